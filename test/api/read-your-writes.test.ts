import { describe, expect, it } from 'vitest';
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
});
