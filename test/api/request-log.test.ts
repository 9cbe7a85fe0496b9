import { describe, expect, it, vi } from 'vitest';
import { loggableUrl } from '../../src/logging/request-log.ts';
import { TOKEN, useListeningApi } from './listening-api.ts';

const api = useListeningApi({}, 'prl');

const linesOf = (reqId: string): Array<Record<string, unknown>> =>
  api.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reqId === reqId);

describe('request logs through the app pino instance', () => {
  it('writes a line in and a line out for a request, with the request id the reply names', async () => {
    const res = await fetch(`${api.url}/v1/nodes?limit=5`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const reqId = res.headers.get('x-request-id');
    expect(reqId).toMatch(/^[0-9a-f-]{36}$/);
    // 'request completed' is written when the server sees the response finish, which can come after the client has it.
    await vi.waitFor(() => expect(linesOf(reqId!).map((l) => l.msg)).toEqual(['incoming request', 'request completed']), { timeout: 10_000, interval: 20 });
    const lines = linesOf(reqId!);
    expect(lines[0]).toMatchObject({ component: 'api', req: { method: 'GET', url: '/v1/nodes?limit=5', remoteAddress: '127.0.0.1' } });
    expect(lines[1]).toMatchObject({ component: 'api', res: { statusCode: 200 }, responseTime: expect.any(Number) });
  });

  it('gives every request its own id', async () => {
    const ids = await Promise.all([1, 2, 3].map(async () => (await fetch(`${api.url}/healthz`)).headers.get('x-request-id')));
    expect(new Set(ids).size).toBe(3);
  });

  it('keeps the token out of request logs: no headers, secret query values redacted', async () => {
    const wrong = 'wrong-token-but-still-secret-123';
    const res = await fetch(`${api.url}/v1/nodes?token=${wrong}&access_key=k3y-value`, { headers: { authorization: `Bearer ${wrong}`, cookie: `session=${TOKEN}` } });
    expect(res.status).toBe(401);
    const ok = await fetch(`${api.url}/v1/nodes`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const reqId = res.headers.get('x-request-id')!;
    // Both requests' lines are complete before the scan for secrets covers them.
    for (const id of [reqId, ok.headers.get('x-request-id')!]) await vi.waitFor(() => expect(linesOf(id)).toHaveLength(2), { timeout: 10_000, interval: 20 });
    expect(linesOf(reqId)[0]).toMatchObject({ req: { url: '/v1/nodes?token=%5Bredacted%5D&access_key=%5Bredacted%5D' } });
    const all = api.logLines.join('\n');
    expect(all).toContain(reqId);
    for (const secret of [TOKEN, wrong, 'k3y-value']) expect(all).not.toContain(secret);
    expect(all.toLowerCase()).not.toContain('authorization');
  });

  it('redacts only secret-looking query parameters', () => {
    expect(loggableUrl('/v1/nodes')).toBe('/v1/nodes');
    expect(loggableUrl('/v1/nodes?minPosition=4&apiToken=x')).toBe('/v1/nodes?minPosition=4&apiToken=%5Bredacted%5D');
  });
});
