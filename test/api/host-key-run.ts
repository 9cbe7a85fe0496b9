import { expect } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import type { AnsibleOutcome, NodeCommand } from '../../src/commands/node-commands.ts';
import { HOST_KEY_A, HOST_KEY_B } from '../support/host-keys.ts';
import { ctx } from '../support/node-fixtures.ts';
import { BUNDLE, nodeBody, type ApiHarness } from './api-harness.ts';

/** A is injected at create, B answers instead. */
export const KEY_A = HOST_KEY_A;
export const KEY_B = HOST_KEY_B;
export const OUTPUT_TAIL = 'PLAY [all] ***\nfatal: [web-1]: UNREACHABLE! => host key verification failed\nWARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!';
const recap = { ok: 0, changed: 0, failures: 0, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 };

export const createNodeThrough = async (h: ApiHarness, name: string, over: Record<string, unknown> = {}) => {
  const res = await h.call('POST', '/v1/nodes', nodeBody({ name, ...over }));
  expect(res.statusCode, res.body).toBe(202);
  return res.json<{ nodeId: string; jobId: string; position: number }>();
};

/** Drives a node's first job, as the saga would, to a run whose node presented KEY_B instead of the injected KEY_A. */
export const failOnHostKeyThrough = async (h: ApiHarness, name: string) => {
  const { nodeId, jobId } = await createNodeThrough(h, name);
  const ref = { jobId, attempt: 1 };
  const step = (cmd: NodeCommand) => handleCommand(h.repo, nodeId, cmd, ctx({ actor: 'saga' }));
  await step({ type: 'StartAttempt', jobId });
  await step({ type: 'RecordSshKey', ...ref, keyId: '42', fingerprint: 'b7:2f:30:00:00:00:00:00:00:00:00:00:00:00:00:01' });
  await step({ type: 'RecordServerCreateIntent', ...ref, serverName: `pl-${name}`, labels: {}, hostKey: KEY_A });
  await step({ type: 'RecordServerCreated', ...ref, serverId: '7', actionIds: [], adopted: false });
  await step({ type: 'RecordServerReady', ...ref, serverId: '7', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
  await step({ type: 'RecordAnsibleStarted', ...ref, playbook: 'ansible/playbooks/node-provision.yml', playbookDigest: BUNDLE.digest, productVersion: BUNDLE.version, hostKeyFingerprint: KEY_A.fingerprint });
  const result: AnsibleOutcome = {
    ok: false,
    errorCode: 'ANSIBLE_HOST_KEY_MISMATCH',
    retryable: false,
    exitCode: 4,
    recap,
    durationMs: 900,
    outputTail: OUTPUT_TAIL,
    hostKeyMismatch: { expectedFingerprint: KEY_A.fingerprint, presentedFingerprint: KEY_B.fingerprint, presentedPublicKey: KEY_B.publicKey },
    finishedAt: new Date().toISOString(),
  };
  const done = await step({ type: 'RecordAnsibleResult', ...ref, result });
  return { nodeId, jobId, position: done.position };
};
