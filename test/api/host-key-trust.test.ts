import { describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { ctx } from '../support/node-fixtures.ts';
import { BUNDLE, nodeBody, useApi } from './api-harness.ts';
import { createNodeThrough, failOnHostKeyThrough, KEY_A, KEY_B } from './host-key-run.ts';

/** Issues 10 and 12 through the API: trusting a presented host key, requiring a playbook bundle, and what a job ran. */
const h = useApi();

const STALE = 'de'.repeat(32);
const createNode = (name: string, over: Record<string, unknown> = {}) => createNodeThrough(h, name, over);
const failOnHostKey = (name: string) => failOnHostKeyThrough(h, name);

describe('POST /v1/nodes/:nodeId/trust-host-key', () => {
  it('shows the mismatch on the node and the job, refuses another fingerprint, then trusts the presented key (200) with the actor', async () => {
    const { nodeId, jobId, position } = await failOnHostKey('mitm-1');
    const node = await h.call('GET', `/v1/nodes/${nodeId}?minPosition=${position}`);
    expect(node.json()).toMatchObject({ status: 'failed', hostKeyFingerprint: KEY_A.fingerprint, hostKeySource: 'created', presentedHostKeyFingerprint: KEY_B.fingerprint });
    const job = await h.call('GET', `/v1/jobs/${jobId}?minPosition=${position}`);
    expect(job.json()).toMatchObject({
      status: 'failed',
      errorCode: 'ANSIBLE_HOST_KEY_MISMATCH',
      playbookDigest: BUNDLE.digest,
      productVersion: BUNDLE.version,
      hostKeyFingerprint: KEY_A.fingerprint,
      hostKeyMismatchExpected: KEY_A.fingerprint,
      hostKeyMismatchPresented: KEY_B.fingerprint,
    });
    expect(job.json<{ errorMessage: string }>().errorMessage).toContain(`presented ${KEY_B.fingerprint}, expected ${KEY_A.fingerprint}`);

    const before = await h.store.version(nodeId);
    const wrong = await h.call('POST', `/v1/nodes/${nodeId}/trust-host-key`, { fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json()).toMatchObject({ error: { code: 'host_key_not_seen', details: { presentedFingerprint: KEY_B.fingerprint } } });
    expect(await h.store.version(nodeId)).toBe(before);

    const ok = await h.call('POST', `/v1/nodes/${nodeId}/trust-host-key`, { fingerprint: KEY_B.fingerprint });
    expect(ok.statusCode).toBe(200);
    const trusted = ok.json<{ nodeId: string; fingerprint: string; position: number }>();
    expect(trusted).toEqual({ nodeId, fingerprint: KEY_B.fingerprint, position: before + 1 });
    const history = await h.repo.history(nodeId);
    expect(history.at(-1)).toMatchObject({ type: 'HostKeyTrusted', actor: 'api:default', correlationId: jobId, data: { nodeId, jobId, ...KEY_B, previousFingerprint: KEY_A.fingerprint } });
    const after = await h.call('GET', `/v1/nodes/${nodeId}?minPosition=${trusted.position}`);
    expect(after.json()).toMatchObject({ hostKeyFingerprint: KEY_B.fingerprint, hostKeySource: 'trusted', presentedHostKeyFingerprint: null });

    // A repeated request is already done: same answer, nothing appended.
    const again = await h.call('POST', `/v1/nodes/${nodeId}/trust-host-key`, { fingerprint: KEY_B.fingerprint });
    expect(again.statusCode).toBe(200);
    expect(await h.store.version(nodeId)).toBe(trusted.position);
  });

  it('refuses while a job is queued (409 job_active), and for a node no run saw another key (409 host_key_not_seen)', async () => {
    const { nodeId, jobId } = await createNode('busy-1');
    const busy = await h.call('POST', `/v1/nodes/${nodeId}/trust-host-key`, { fingerprint: KEY_B.fingerprint });
    expect(busy.statusCode).toBe(409);
    expect(busy.json()).toMatchObject({ error: { code: 'job_active' } });
    await handleCommand(h.repo, nodeId, { type: 'RequestCancel', jobId, reason: 'test' }, ctx());
    await handleCommand(h.repo, nodeId, { type: 'ConfirmCancel', jobId }, ctx());
    const unseen = await h.call('POST', `/v1/nodes/${nodeId}/trust-host-key`, { fingerprint: KEY_B.fingerprint });
    expect(unseen.statusCode).toBe(409);
    expect(unseen.json()).toMatchObject({ error: { code: 'host_key_not_seen', details: { presentedFingerprint: null } } });
  });

  it('answers 404 for an unknown node and 400 for a bad body, appending nothing', async () => {
    const missing = await h.call('POST', '/v1/nodes/n_missing/trust-host-key', { fingerprint: KEY_B.fingerprint });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'not_found' } });
    const before = await h.store.lastPosition();
    for (const body of [undefined, {}, { fingerprint: 'MD5:aa:bb' }, { fingerprint: `${KEY_B.fingerprint}=` }, { fingerprint: KEY_B.fingerprint, publicKey: KEY_B.publicKey }]) {
      const res = await h.call('POST', '/v1/nodes/n_x/trust-host-key', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'bad_request' } });
    }
    expect(await h.store.lastPosition()).toBe(before);
  });
});

describe('expectPlaybook and GET /v1/version', () => {
  it('shows the version and the digest expectPlaybook must carry', async () => {
    const res = await h.call('GET', '/v1/version');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ version: BUNDLE.version, playbookDigest: BUNDLE.digest });
    expect((await h.app.inject({ method: 'GET', url: '/v1/version' })).statusCode).toBe(401);
  });

  it('refuses a create with a stale digest (409 playbook_digest_mismatch) and appends nothing', async () => {
    const before = await h.store.lastPosition();
    const res = await h.call('POST', '/v1/nodes', nodeBody({ name: 'stale-1', expectPlaybook: STALE }));
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: { code: 'playbook_digest_mismatch', details: { expected: STALE, actual: BUNDLE.digest } } });
    expect(await h.store.lastPosition()).toBe(before);
  });

  it('records a matching digest on the request and never in the node spec', async () => {
    const { nodeId } = await createNode('fresh-1', { expectPlaybook: BUNDLE.digest });
    const [first] = await h.repo.history(nodeId);
    expect(first).toMatchObject({ type: 'ProvisionRequested', data: { expectPlaybook: BUNDLE.digest } });
    expect((await h.repo.load(nodeId)).state.spec).not.toHaveProperty('expectPlaybook');
  });

  it('refuses a re-provision with a stale digest, accepts the current one', async () => {
    const { nodeId } = await failOnHostKey('reprov-1');
    const before = await h.store.version(nodeId);
    const stale = await h.call('POST', `/v1/nodes/${nodeId}/provision`, { expectPlaybook: STALE });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ error: { code: 'playbook_digest_mismatch' } });
    expect(await h.store.version(nodeId)).toBe(before);
    const ok = await h.call('POST', `/v1/nodes/${nodeId}/provision`, { expectPlaybook: BUNDLE.digest });
    expect(ok.statusCode).toBe(202);
    expect((await h.repo.history(nodeId)).at(-1)).toMatchObject({ type: 'ProvisionRequested', data: { reprovision: true, expectPlaybook: BUNDLE.digest } });
  });

  it.each([
    ['POST', '/v1/nodes', nodeBody({ name: 'bad-1', expectPlaybook: 'ABC' })],
    ['POST', '/v1/nodes', nodeBody({ name: 'bad-2', expectPlaybook: 'A'.repeat(64) })],
    ['POST', '/v1/nodes/n_x/provision', { expectPlaybook: 'nope' }],
    ['POST', '/v1/nodes/n_x/provision', { expectPlaybook: BUNDLE.digest, extra: 1 }],
  ] as const)('answers 400 bad_request for %s %s with a malformed digest or field', async (method, url, body) => {
    const res = await h.call(method, url, body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'bad_request' } });
  });
});
