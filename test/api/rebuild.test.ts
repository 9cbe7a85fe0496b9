import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSse } from '../../src/cli/sse-reader.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { AUTH, nodeBody, useApi } from './api-harness.ts';

const h = useApi();

/** The read model a fresh projector builds from the whole log: what the live one must equal. */
const cleanReplay = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pressluft-replay-'));
  const p = new Projector(h.store, { dbPath: join(dir, 'replay.sqlite'), logger: captureLogger('warn').logger });
  p.start();
  expect(await p.waitFor(await h.store.lastPosition(), 20_000)).toBe(true);
  await p.stop();
  const dump = new ReadModelQueries(p.db).dump();
  p.close();
  await rm(dir, { recursive: true, force: true });
  return dump;
};

/** Creates nodes through the API until stopped, so the log grows during a rebuild. */
const keepWriting = () => {
  let stop = false;
  let created = 0;
  const done = (async () => {
    while (!stop) {
      const res = await h.call('POST', '/v1/nodes', nodeBody({ name: `during-${created}` }));
      expect(res.statusCode).toBe(202);
      created++;
    }
  })();
  return {
    stop: async () => {
      stop = true;
      await done;
      return created;
    },
  };
};

describe('projection rebuild through the API', () => {
  it('reports status, rebuilds while commands arrive, swaps, and loses no update', async () => {
    for (let i = 0; i < 150; i++) await h.call('POST', '/v1/nodes', nodeBody({ name: `before-${i}` }));
    const status = await h.call('GET', '/v1/projections');
    expect(status.json()).toMatchObject({ projections: [{ name: 'nodes', rebuilding: false, error: null }] });

    const writer = keepWriting();
    const res = await h.call('POST', '/v1/projections/rebuild', { name: 'nodes' });
    const created = await writer.stop();
    expect(res.statusCode).toBe(200);
    const report = res.json<{ replayed: number; lagBefore: number; lagAfter: number; durationMs: number }>();
    expect(report.replayed).toBeGreaterThanOrEqual(150);
    expect(report).toMatchObject({ name: 'nodes', lagBefore: expect.any(Number), lagAfter: expect.any(Number) });
    expect(created).toBeGreaterThan(0);

    expect(await h.projector.waitFor(await h.store.lastPosition(), 20_000)).toBe(true);
    const live = h.queries.dump();
    expect(live.nodes).toHaveLength(150 + created);
    expect(live).toEqual(await cleanReplay());
  }, 180_000);

  it('streams rebuild progress over SSE and refuses a second rebuild while one runs', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    const writer = keepWriting();
    const res = await fetch(`${base}/v1/projections/rebuild`, { method: 'POST', headers: { ...AUTH, accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    const second = await h.call('POST', '/v1/projections/rebuild');
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ error: { code: 'conflict' } });
    const events: string[] = [];
    let report: Record<string, unknown> = {};
    for await (const e of readSse(res.body!)) {
      events.push(e.event);
      if (e.event === 'report') report = JSON.parse(e.data);
    }
    await writer.stop();
    expect(events.at(-1)).toBe('report');
    expect(events.filter((e) => e === 'progress').length).toBeGreaterThan(0);
    expect(report).toMatchObject({ name: 'nodes', replayed: expect.any(Number), lagBefore: expect.any(Number), lagAfter: expect.any(Number) });
    expect(await h.projector.waitFor(await h.store.lastPosition(), 20_000)).toBe(true);
    expect(h.queries.dump()).toEqual(await cleanReplay());
  }, 180_000);
});
