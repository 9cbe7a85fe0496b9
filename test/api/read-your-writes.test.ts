import { describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { ctx } from '../support/node-fixtures.ts';
import { nodeBody, useApi } from './api-harness.ts';

// The projector starts paused, so the test controls when the read model catches up.
const h = useApi({ consistencyWaitMs: 300, startProjector: false });
/** The bound is per app: a short one shows the stale answer, a long one the wait (starting the projector can take seconds under load). */
const PATIENT_WAIT_MS = 30_000;

describe('read-your-writes with ?minPosition=', () => {
  it('answers stale (flagged) after the bound, then waits for the projector and sees the write', async () => {
    const created = await h.call('POST', '/v1/nodes', nodeBody({ name: 'ryw' }));
    const { nodeId, position } = created.json<{ nodeId: string; position: number }>();

    const started = Date.now();
    const stale = await h.call('GET', `/v1/nodes/${nodeId}?minPosition=${position}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(stale.statusCode).toBe(404);
    expect(stale.headers['x-pressluft-stale']).toBe('true');
    expect(stale.headers['x-pressluft-checkpoint']).toBe('0');

    const patient = await h.callWithWait(PATIENT_WAIT_MS);
    const pending = patient('GET', `/v1/nodes/${nodeId}?minPosition=${position}`);
    h.projector.start();
    const fresh = await pending;
    expect(fresh.statusCode).toBe(200);
    expect(fresh.headers['x-pressluft-stale']).toBeUndefined();
    expect(Number(fresh.headers['x-pressluft-checkpoint'])).toBeGreaterThanOrEqual(position);
    expect(fresh.json()).toMatchObject({ id: nodeId, name: 'ryw', position });
  });

  it('flags a job stream opened on a read model behind minPosition as stale, as other reads are', async () => {
    const { nodeId, jobId } = (await h.call('POST', '/v1/nodes', nodeBody({ name: 'ryw-stream' }))).json<{ nodeId: string; jobId: string }>();
    await handleCommand(h.repo, nodeId, { type: 'RequestCancel', jobId, reason: 'test' }, ctx());
    const cancelled = await handleCommand(h.repo, nodeId, { type: 'ConfirmCancel', jobId }, ctx({ actor: 'saga' }));
    expect(await h.projector.waitFor(cancelled.position, PATIENT_WAIT_MS)).toBe(true);
    await h.projector.stop();
    const later = (await h.call('POST', '/v1/nodes', nodeBody({ name: 'ryw-later' }))).json<{ position: number }>();

    const stream = await h.call('GET', `/v1/jobs/${jobId}/stream?minPosition=${later.position}`);
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toContain('text/event-stream');
    expect(stream.headers['x-pressluft-stale']).toBe('true');
    expect(Number(stream.headers['x-pressluft-checkpoint'])).toBe(cancelled.position);
    expect(stream.body).toContain('event: end');
  });
});
