import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { readSse, type SseEvent } from '../../src/cli/sse-reader.ts';
import { JOB_STREAM_LIMITS } from '../../src/api/routes/job-routes.ts';
import { StreamQuota } from '../../src/api/sse.ts';
import { ctx } from '../support/node-fixtures.ts';
import { AUTH, nodeBody, useApi } from './api-harness.ts';

const h = useApi();
let base = '';

beforeAll(async () => {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});
afterAll(() => h.app.close());

/** The stream URL waits for the read model to hold the job's creation: the projector runs apart from the append. */
const streamUrl = (job: { jobId: string; position: number }) => `${base}/v1/jobs/${job.jobId}/stream?minPosition=${job.position}`;

/** Opens the job's SSE stream over a real socket and hands out events one at a time. */
const openStream = async (job: { jobId: string; position: number }, headers: Record<string, string> = {}) => {
  const res = await fetch(streamUrl(job), { headers: { ...AUTH, ...headers } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events = readSse(res.body!);
  const next = async (): Promise<SseEvent> => {
    const r = await events.next();
    if (r.done) throw new Error('stream ended');
    return r.value;
  };
  const ended = async (): Promise<boolean> => (await events.next()).done === true;
  return { next, ended };
};

const createNode = async (name: string) => (await h.call('POST', '/v1/nodes', nodeBody({ name }))).json<{ nodeId: string; jobId: string; position: number }>();

describe('GET /v1/jobs/:jobId/stream', () => {
  it('streams history, live events and Ansible progress, and ends at the terminal event', async () => {
    const { nodeId, jobId, position } = await createNode('streamed');
    const stream = await openStream({ jobId, position });

    const first = await stream.next();
    expect(first).toMatchObject({ event: 'job-event', id: String(position) });
    expect(JSON.parse(first.data)).toMatchObject({ type: 'ProvisionRequested', position, actor: 'api:default' });

    const started = await handleCommand(h.repo, nodeId, { type: 'StartAttempt', jobId }, ctx({ actor: 'saga' }));
    const live = await stream.next();
    expect(live.id).toBe(String(started.position));
    expect(JSON.parse(live.data)).toMatchObject({ type: 'JobStarted', data: { jobId, attempt: 1 } });

    const progress = { index: 3, total: 17, task: 'base : install packages', host: 'node', status: 'changed', jobId, attempt: 1 };
    h.store.publishProgress(jobId, progress);
    // Garbage and other jobs' progress on the same subject are dropped.
    h.store.publishProgress(jobId, 'not an object');
    h.store.publishProgress(jobId, { ...progress, jobId: 'j_other' });
    const p = await stream.next();
    expect(p.event).toBe('progress');
    expect(JSON.parse(p.data)).toEqual(progress);

    await handleCommand(h.repo, nodeId, { type: 'RecordStepFailure', jobId, attempt: 1, step: 'ssh_key', errorCode: 'PROVIDER_AUTH', errorMessage: 'token rejected', retryable: false, now: new Date().toISOString() }, ctx({ actor: 'saga' }));
    const failed = await stream.next();
    expect(JSON.parse(failed.data)).toMatchObject({ type: 'ProvisionFailed', data: { errorCode: 'PROVIDER_AUTH' } });
    const end = await stream.next();
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data)).toMatchObject({ jobId, status: 'failed' });
    expect(await stream.ended()).toBe(true);
  });

  it('replays a finished job and ends; Last-Event-ID resumes after a position', async () => {
    const { nodeId, jobId, position } = await createNode('finished');
    await handleCommand(h.repo, nodeId, { type: 'RequestCancel', jobId, reason: 'test' }, ctx());
    await handleCommand(h.repo, nodeId, { type: 'ConfirmCancel', jobId }, ctx({ actor: 'saga' }));
    const last = await h.store.lastPosition();

    const all = await openStream({ jobId, position: last });
    const types: string[] = [];
    for (let e = await all.next(); e.event !== 'end'; e = await all.next()) types.push(JSON.parse(e.data).type);
    expect(types).toEqual(['ProvisionRequested', 'JobCancelRequested', 'JobCancelled']);
    expect(await all.ended()).toBe(true);

    const resumed = await openStream({ jobId, position: last }, { 'last-event-id': String(position) });
    expect(JSON.parse((await resumed.next()).data)).toMatchObject({ type: 'JobCancelRequested' });
  });

  it('clamps a Last-Event-ID past the job to its last position: a finished job ends at once, a running one resumes', async () => {
    const done = await createNode('clamped-done');
    await handleCommand(h.repo, done.nodeId, { type: 'RequestCancel', jobId: done.jobId, reason: 'test' }, ctx());
    const cancelled = await handleCommand(h.repo, done.nodeId, { type: 'ConfirmCancel', jobId: done.jobId }, ctx({ actor: 'saga' }));
    // The clamp reads the job's last position from the read model: wait until it holds the cancel.
    const finished = await openStream({ jobId: done.jobId, position: cancelled.position }, { 'last-event-id': '999999' });
    const end = await finished.next();
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data)).toEqual({ jobId: done.jobId, status: 'cancelled', position: cancelled.position });
    expect(await finished.ended()).toBe(true);

    const running = await createNode('clamped-running');
    const resumed = await openStream(running, { 'last-event-id': '999999' });
    const started = await handleCommand(h.repo, running.nodeId, { type: 'StartAttempt', jobId: running.jobId }, ctx({ actor: 'saga' }));
    const live = await resumed.next();
    expect(live.id).toBe(String(started.position));
    expect(JSON.parse(live.data)).toMatchObject({ type: 'JobStarted' });
    await handleCommand(h.repo, running.nodeId, { type: 'RequestCancel', jobId: running.jobId, reason: 'test' }, ctx());
    await handleCommand(h.repo, running.nodeId, { type: 'ConfirmCancel', jobId: running.jobId }, ctx({ actor: 'saga' }));
    for (let e = await resumed.next(); e.event !== 'end'; e = await resumed.next());
    expect(await resumed.ended()).toBe(true);
  });

  it(`answers 429 too_many_streams beyond ${JOB_STREAM_LIMITS.perKey} streams on one job, and frees the slot when a stream closes`, async () => {
    const crowded = await createNode('crowded');
    const open: AbortController[] = [];
    for (let i = 0; i < JOB_STREAM_LIMITS.perKey; i++) {
      const c = new AbortController();
      const res = await fetch(streamUrl(crowded), { headers: AUTH, signal: c.signal });
      expect(res.status).toBe(200);
      open.push(c);
    }
    const refused = await fetch(streamUrl(crowded), { headers: AUTH });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'too_many_streams', details: { scope: 'per_job', limit: JOB_STREAM_LIMITS.perKey } } });
    open.pop()!.abort();
    await expect
      .poll(async () => {
        const c = new AbortController();
        const res = await fetch(streamUrl(crowded), { headers: AUTH, signal: c.signal });
        if (res.status === 200) open.push(c);
        return res.status;
      }, { timeout: 20_000, interval: 100 })
      .toBe(200);
    for (const c of open) c.abort();
  });

  it('caps streams per key and in total, and a released slot is reusable once', () => {
    const quota = new StreamQuota({ perKey: 2, total: 3 });
    const a1 = quota.take('a');
    const a2 = quota.take('a');
    expect(quota.take('a')).toEqual({ full: 'per_job', limit: 2 });
    const b1 = quota.take('b');
    expect(quota.take('c')).toEqual({ full: 'total', limit: 3 });
    if (!('release' in a1) || !('release' in a2) || !('release' in b1)) throw new Error('expected slots');
    a1.release();
    a1.release();
    expect(quota.open).toBe(2);
    expect('release' in quota.take('c')).toBe(true);
    expect(quota.take('d')).toEqual({ full: 'total', limit: 3 });
  });

  it('closes open streams when the server closes', async () => {
    const stream = await openStream(await createNode('left-open'));
    await stream.next();
    // Last test: without the preClose hook, close() would wait for this client forever.
    const closing = h.app.close();
    expect(await stream.ended()).toBe(true);
    await closing;
  });
});
