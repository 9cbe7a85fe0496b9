import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHetznerSimulator, type HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';

let sim: HetznerSimulator;
beforeEach(async () => {
  sim = await startHetznerSimulator({ actionDurationMs: null });
});
afterEach(async () => {
  await sim.close();
});

const get = async (path: string) => {
  const res = await fetch(`${sim.url}${path}`, { headers: { authorization: `Bearer ${sim.token}` } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
};
const admin = (path: string, body: unknown) =>
  fetch(`${sim.origin}/__admin/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('simulator rate limit', () => {
  it('refuses every N-th request with 429 and a drained-bucket answer, through the admin API', async () => {
    expect((await admin('rate-limit', { refuseEveryNth: 3 })).status).toBe(204);
    const answers = [];
    for (let i = 0; i < 9; i++) answers.push(await get('/servers'));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429, 200, 200, 429, 200, 200, 429]);
    const refused = answers[2]!;
    expect(refused.body).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    expect(sim.admin.snapshot().counters.rateLimited).toBe(3);

    expect((await admin('rate-limit', { refuseEveryNth: null })).status).toBe(204);
    for (let i = 0; i < 4; i++) expect((await get('/servers')).status).toBe(200);
    expect((await admin('rate-limit', { refuseEveryNth: 1 })).status).toBe(400);
  });

  it('takes a bucket through the admin API and counts it down in RateLimit-* headers', async () => {
    expect((await admin('rate-limit', { bucket: { limit: 20, refillPerSecond: 1 } })).status).toBe(204);
    const remaining: string[] = [];
    let last;
    // Until the first refusal: on a slow machine the 1/s refill adds tokens during the run, so it can take more than 21 requests.
    for (let i = 0; i < 60 && last?.status !== 429; i++) {
      last = await get('/ssh_keys');
      remaining.push(last.headers.get('ratelimit-remaining')!);
      expect(last.headers.get('ratelimit-limit')).toBe('20');
    }
    // The count goes down to 0 and then refuses; never before the bucket's 20 were served.
    expect(remaining[0]).toBe('19');
    expect(remaining.length).toBeGreaterThanOrEqual(21);
    expect(last!.status).toBe(429);
    expect(remaining.at(-1)).toBe('0');
    // Full again in about 20 s.
    const reset = Number(last!.headers.get('ratelimit-reset'));
    expect(reset * 1000 - Date.now()).toBeGreaterThan(18_000);
    expect(reset * 1000 - Date.now()).toBeLessThanOrEqual(21_000);
    sim.admin.reset();
    expect((await get('/ssh_keys')).headers.get('ratelimit-limit')).toBe('3600');
  });
});

describe('simulator GET /actions?id=…', () => {
  it('answers many ids in one list, pages them at 50, and rejects a missing or malformed id', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${sim.url}/servers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `s${i}`, server_type: 'cx22', image: 'debian-12', labels: {} }),
      });
      const body = (await res.json()) as { action: { id: number }; next_actions: { id: number }[] };
      ids.push(body.action.id, ...body.next_actions.map((a) => a.id));
    }
    const qs = ids.map((id) => `id=${id}`).join('&');
    const page1 = await get(`/actions?${qs}&per_page=50`);
    expect(page1.status).toBe(200);
    expect((page1.body.actions as { id: number }[]).map((a) => a.id)).toEqual(ids.slice(0, 50));
    expect(page1.body.meta).toMatchObject({ pagination: { page: 1, next_page: 2, total_entries: 60 } });
    const page2 = await get(`/actions?${qs}&per_page=50&page=2`);
    expect((page2.body.actions as { id: number }[]).map((a) => a.id)).toEqual(ids.slice(50));
    expect(sim.admin.snapshot().counters.calls.list_actions).toBe(2);

    expect((await get('/actions')).status).toBe(422);
    expect((await get('/actions?id=abc')).status).toBe(422);
    expect((await get('/actions?id=0')).status).toBe(422);
    expect((await get(`/actions?${qs}&per_page=51`)).status).toBe(422);
  });
});
