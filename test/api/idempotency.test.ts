import { describe, expect, it } from 'vitest';
import { nodeBody, useApi } from './api-harness.ts';

const h = useApi();

const post = (key: string, body: Record<string, unknown>) => h.call('POST', '/v1/nodes', body, { 'idempotency-key': key });

describe('Idempotency-Key on POST /v1/nodes', () => {
  it('answers a repeat with the same key and body identically, without a second job', async () => {
    const first = await post('key-repeat', nodeBody({ name: 'idem-1' }));
    expect(first.statusCode).toBe(202);
    const before = await h.store.lastPosition();
    // Defaults applied: the explicit default values are the same request.
    const again = await post('key-repeat', nodeBody({ name: 'idem-1', image: 'ubuntu-24.04', sshUser: 'root', sshPort: 22 }));
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    expect(await h.store.lastPosition()).toBe(before);
  });

  it('refuses the same key with a different body (409 conflict) and appends nothing', async () => {
    const first = await post('key-differs', nodeBody({ name: 'idem-2' }));
    expect(first.statusCode).toBe(202);
    const before = await h.store.lastPosition();
    const other = await post('key-differs', nodeBody({ name: 'idem-2', sshPort: 2222 }));
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ error: { code: 'conflict' } });
    expect(await h.store.lastPosition()).toBe(before);
  });

  it('collapses 20 parallel identical requests into one job', async () => {
    const before = await h.store.lastPosition();
    const answers = await Promise.all(Array.from({ length: 20 }, () => post('key-parallel', nodeBody({ name: 'idem-3' }))));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(202));
    const bodies = new Set(answers.map((a) => a.body));
    expect(bodies.size).toBe(1);
    const { nodeId, jobId, position } = answers[0]!.json<{ nodeId: string; jobId: string; position: number }>();
    expect(await h.store.lastPosition()).toBe(before + 1);
    const history = await h.repo.history(nodeId);
    expect(history.map((e) => [e.type, e.position, e.data.jobId])).toEqual([['ProvisionRequested', position, jobId]]);
  });

  it('gives different keys different nodes', async () => {
    const a = await post('key-a', nodeBody({ name: 'idem-4' }));
    const b = await post('key-b', nodeBody({ name: 'idem-4' }));
    expect(a.json<{ nodeId: string }>().nodeId).not.toBe(b.json<{ nodeId: string }>().nodeId);
  });
});
