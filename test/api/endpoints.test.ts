import { describe, expect, it } from 'vitest';
import { jobView, nodeView } from '../../src/api/api-schemas.ts';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { ctx } from '../support/node-fixtures.ts';
import { AUTH, nodeBody, useApi } from './api-harness.ts';

const h = useApi();

const createNode = async (over: Record<string, unknown> = {}) => {
  const res = await h.call('POST', '/v1/nodes', nodeBody(over));
  expect(res.statusCode).toBe(202);
  return res.json<{ nodeId: string; jobId: string; position: number }>();
};

describe('commands and queries', () => {
  it('creates a node with defaults and reads it back with read-your-writes', async () => {
    const created = await createNode({ name: 'app-1.example.com' });
    expect(created.nodeId).toMatch(/^n_[0-9a-f]{20}$/);
    expect(created.jobId).toMatch(/^j_[0-9a-f]{20}$/);
    const node = await h.call('GET', `/v1/nodes/${created.nodeId}?minPosition=${created.position}`);
    expect(node.statusCode).toBe(200);
    expect(node.headers['x-pressluft-stale']).toBeUndefined();
    expect(node.json()).toMatchObject({
      id: created.nodeId,
      name: 'app-1.example.com',
      status: 'pending',
      image: 'ubuntu-24.04',
      sshUser: 'root',
      sshPort: 22,
      providerServerId: null,
      ipv4: null,
      ipv6: null,
      currentJobId: created.jobId,
      lastJobId: null,
      position: created.position,
      projection: { broken: false, position: null, reason: null, at: null, skipped: 0 },
    });
    // The views are derived from one column list: the answer has exactly the schema's fields.
    expect(Object.keys(node.json()).sort()).toEqual(Object.keys(nodeView.shape).sort());
    const job = await h.call('GET', `/v1/jobs/${created.jobId}?minPosition=${created.position}`);
    expect(job.json()).toMatchObject({ id: created.jobId, nodeId: created.nodeId, kind: 'node_provision', status: 'queued', step: 'queued', attempt: 0, maxAttempts: 3, errorCode: null, updatedAt: expect.any(String) });
    expect(Object.keys(job.json()).sort()).toEqual(Object.keys(jobView.shape).sort());
  });

  it('lists nodes with paging', async () => {
    const a = await createNode({ name: 'list-a' });
    const b = await createNode({ name: 'list-b' });
    const pos = Math.max(a.position, b.position);
    const all = await h.call('GET', `/v1/nodes?minPosition=${pos}&limit=500`);
    expect(all.statusCode).toBe(200);
    const ids = all.json<{ nodes: Array<{ id: string }> }>().nodes.map((n) => n.id);
    expect(ids).toEqual(expect.arrayContaining([a.nodeId, b.nodeId]));
    const page = await h.call('GET', '/v1/nodes?limit=1');
    const first = page.json<{ nodes: Array<{ id: string }>; next: string }>();
    expect(first.nodes).toHaveLength(1);
    expect(first.next).toBe(first.nodes[0]?.id);
    const second = await h.call('GET', `/v1/nodes?limit=1&after=${first.next}`);
    const secondId = second.json<{ nodes: Array<{ id: string }> }>().nodes[0]?.id ?? '';
    expect(secondId > first.next).toBe(true);
  });

  it('refuses a re-provision while the job is active (409 job_active), and accepts it after', async () => {
    const { nodeId, jobId } = await createNode({ name: 'reprov' });
    const busy = await h.call('POST', `/v1/nodes/${nodeId}/provision`);
    expect(busy.statusCode).toBe(409);
    expect(busy.json()).toMatchObject({ error: { code: 'job_active', details: { activeJobId: jobId } } });
    await handleCommand(h.repo, nodeId, { type: 'StartAttempt', jobId }, ctx());
    await handleCommand(h.repo, nodeId, { type: 'RecordStepFailure', jobId, attempt: 1, step: 'ssh_key', errorCode: 'PROVIDER_AUTH', errorMessage: 'no', retryable: false, now: new Date().toISOString() }, ctx());
    const again = await h.call('POST', `/v1/nodes/${nodeId}/provision`);
    expect(again.statusCode).toBe(202);
    const { jobId: next, position } = again.json<{ jobId: string; position: number }>();
    expect(next).not.toBe(jobId);
    const node = await h.call('GET', `/v1/nodes/${nodeId}?minPosition=${position}`);
    expect(node.json()).toMatchObject({ currentJobId: next, lastJobId: jobId });
  });

  it('answers 404 not_found for unknown nodes and jobs', async () => {
    for (const url of ['/v1/nodes/n_missing', '/v1/jobs/j_missing', '/v1/nodes/n_missing/events', '/v1/nodes/n_missing/state', '/v1/jobs/j_missing/stream', '/v1/nowhere']) {
      const res = await h.call('GET', url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json(), url).toMatchObject({ error: { code: 'not_found' } });
    }
    for (const url of ['/v1/nodes/n_missing/provision', '/v1/jobs/j_missing/cancel']) {
      const res = await h.call('POST', url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json(), url).toMatchObject({ error: { code: 'not_found' } });
    }
  });

  it('cancels a queued job once (202), then refuses a finished one (409 job_not_cancellable)', async () => {
    const { nodeId, jobId, position } = await createNode({ name: 'cancel-me' });
    const res = await h.call('POST', `/v1/jobs/${jobId}/cancel?minPosition=${position}`, { reason: 'changed my mind' });
    expect(res.statusCode).toBe(202);
    const history = await h.repo.history(nodeId);
    expect(history.at(-1)).toMatchObject({ type: 'JobCancelRequested', actor: 'api:default', data: { jobId, reason: 'changed my mind' } });
    await handleCommand(h.repo, nodeId, { type: 'ConfirmCancel', jobId }, ctx());
    const after = await h.store.version(nodeId);
    const refused = await h.call('POST', `/v1/jobs/${jobId}/cancel?minPosition=${after}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: { code: 'job_not_cancellable', details: { status: 'cancelled' } } });
  });

  it('serves the audit history with actor, correlation and causation, and ?from=', async () => {
    const { nodeId, jobId, position } = await createNode({ name: 'audited' });
    await handleCommand(h.repo, nodeId, { type: 'StartAttempt', jobId }, ctx({ actor: 'saga', causationId: String(position) }));
    const res = await h.call('GET', `/v1/nodes/${nodeId}/events`);
    expect(res.statusCode).toBe(200);
    const { events } = res.json<{ events: Array<Record<string, unknown>> }>();
    expect(events.map((e) => e.type)).toEqual(['ProvisionRequested', 'JobStarted']);
    expect(events[0]).toMatchObject({ position, actor: 'api:default', correlationId: jobId, causationId: `provision:${jobId}`, data: { name: 'audited', sshPort: 22 } });
    expect(events[1]).toMatchObject({ actor: 'saga', causationId: String(position), data: { jobId, attempt: 1 } });
    expect(typeof events[0]?.occurredAt).toBe('string');
    const later = await h.call('GET', `/v1/nodes/${nodeId}/events?from=${position + 1}`);
    expect(later.json<{ events: Array<{ type: string }> }>().events.map((e) => e.type)).toEqual(['JobStarted']);
  });

  it('folds point-in-time state up to ?at=', async () => {
    const { nodeId, jobId, position } = await createNode({ name: 'timetravel' });
    const started = await handleCommand(h.repo, nodeId, { type: 'StartAttempt', jobId }, ctx());
    const then = await h.call('GET', `/v1/nodes/${nodeId}/state?at=${position}`);
    expect(then.statusCode).toBe(200);
    expect(then.json()).toMatchObject({ nodeId, at: position, state: { status: 'pending', jobs: { [jobId]: { status: 'queued', attempt: 0 } } } });
    const now = await h.call('GET', `/v1/nodes/${nodeId}/state`);
    expect(now.json()).toMatchObject({ at: started.position, state: { status: 'acquiring', jobs: { [jobId]: { status: 'running', attempt: 1 } } } });
    const before = await h.call('GET', `/v1/nodes/${nodeId}/state?at=${position - 1}`);
    expect(before.statusCode).toBe(404);
  });

  it('serves public health, readiness and metrics without a token', async () => {
    const health = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.json()).toEqual({ status: 'ok' });
    expect(await h.projector.waitFor(await h.store.lastPosition(), 30_000)).toBe(true);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { nats: 'ok', projector: { lag: 0 } } });
    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/^pressluft_jobs\{status="queued"\} [1-9]\d*$/m);
    expect(metrics.body).toMatch(/^pressluft_jobs\{status="succeeded"\} 0$/m);
    expect(metrics.body).toMatch(/^pressluft_projector_lag\{projection="nodes"\} 0$/m);
    expect(metrics.body).toMatch(/^pressluft_projector_checkpoint\{projection="nodes"\} [1-9]\d*$/m);
  });
});

describe('auth', () => {
  const routes: Array<['GET' | 'POST', string]> = [
    ['POST', '/v1/nodes'],
    ['POST', '/v1/nodes/n_x/provision'],
    ['POST', '/v1/nodes/n_x/trust-host-key'],
    ['GET', '/v1/version'],
    ['GET', '/v1/nodes'],
    ['GET', '/v1/nodes/n_x'],
    ['GET', '/v1/nodes/n_x/events'],
    ['GET', '/v1/nodes/n_x/state'],
    ['GET', '/v1/jobs/j_x'],
    ['POST', '/v1/jobs/j_x/cancel'],
    ['GET', '/v1/jobs/j_x/stream'],
    ['GET', '/v1/projections'],
    ['POST', '/v1/projections/rebuild'],
    ['GET', '/openapi.json'],
  ];
  const badHeaders: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
    ['token prefix only', { authorization: `${AUTH.authorization.slice(0, -1)}` }],
    ['basic scheme', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['bare token', { authorization: AUTH.authorization.replace('Bearer ', '') }],
  ];
  it.each(routes)('%s %s needs the token', async (method, url) => {
    const before = await h.store.lastPosition();
    for (const [what, headers] of badHeaders) {
      const res = await h.app.inject({ method, url, headers, payload: method === 'POST' ? nodeBody() : undefined });
      expect(res.statusCode, what).toBe(401);
      expect(res.json(), what).toMatchObject({ error: { code: 'unauthorized' } });
      expect(res.body).not.toContain('0123456789abcdef');
    }
    expect(await h.store.lastPosition()).toBe(before);
  });
});
