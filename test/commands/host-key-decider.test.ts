import { describe, expect, it } from 'vitest';
import { HostKeyNotSeen, JobActive, NodeNotFound } from '../../src/commands/domain-errors.ts';
import type { AnsibleOutcome } from '../../src/commands/node-commands.ts';
import { decide } from '../../src/commands/node-decider.ts';
import { event, type NodeEvent } from '../../src/events/node-events.ts';
import { foldNode } from '../../src/events/node-state.ts';
import { given } from '../support/decider-spec.ts';
import { policy, spec } from '../support/node-fixtures.ts';

/** Host-key trust and what ran (issues 10 and 12), Given/When/Then over the pure decider. */
const nodeId = 'n1';
const jobId = 'j1';
const ref = { jobId, attempt: 1 };
const recap = { ok: 0, changed: 0, failures: 0, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 };
const KEY_A = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMqpIFcZgho9kBPBcRERloIi0wn6UtiM8C8b7PvFL14p', fingerprint: 'SHA256:Qzsk1Tg0bDCH4An8x/VVN8tA7jshiMPG31ZkW3VzZGk' };
const KEY_B = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMZ1pTiXkUV/6ifoJUm2IYXOjl8MkCrX+S39LBRuQviR', fingerprint: 'SHA256:LAh7P/Y2lvwyCgx4wXBV5FLsv8Vs2ZpZswqzdfpBghE' };
const DIGEST = 'ab'.repeat(32);

const requested = (over: { jobId?: string; reprovision?: boolean; expectPlaybook?: string } = {}) =>
  event('ProvisionRequested', {
    nodeId,
    jobId: over.jobId ?? jobId,
    ...spec(),
    maxAttempts: 1,
    policy: policy({ maxAttempts: 1 }),
    reprovision: over.reprovision ?? false,
    ...(over.expectPlaybook ? { expectPlaybook: over.expectPlaybook } : {}),
  });
const intent = event('ServerCreateRequested', { ...ref, serverName: 'pl-n1', labels: { 'pressluft/node': nodeId }, hostKey: KEY_A });
const acquired: NodeEvent[] = [
  requested(),
  event('JobStarted', ref),
  event('SshKeyRegistered', { ...ref, keyId: '42', fingerprint: 'b7:2f:30:00:00:00:00:00:00:00:00:00:00:00:00:01' }),
  intent,
  event('ServerCreated', { ...ref, serverId: '7', actionIds: [], adopted: false }),
  event('ServerReady', { ...ref, serverId: '7', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' }),
];
const started = event('AnsibleStarted', { ...ref, playbook: 'ansible/playbooks/node-provision.yml', playbookDigest: DIGEST, productVersion: '0.1.0', hostKeyFingerprint: KEY_A.fingerprint });
const mismatch = { expectedFingerprint: KEY_A.fingerprint, presentedFingerprint: KEY_B.fingerprint, presentedPublicKey: KEY_B.publicKey };
const outcome = (over: Partial<AnsibleOutcome> = {}): AnsibleOutcome => ({
  ok: false,
  errorCode: 'ANSIBLE_HOST_KEY_MISMATCH',
  retryable: false,
  exitCode: 4,
  recap,
  durationMs: 800,
  outputTail: 'WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!',
  errorMessage: 'ssh refused the host key',
  hostKeyMismatch: mismatch,
  finishedAt: '2026-11-26T12:10:00.000Z',
  ...over,
});
const MISMATCH_MESSAGE = `host key mismatch: the node presented ${KEY_B.fingerprint}, expected ${KEY_A.fingerprint}; no task ran. If the server was rebuilt on purpose: pressluft node trust-host-key n1 --fingerprint ${KEY_B.fingerprint}`;
const failedRun = event('AnsibleFailed', { ...ref, errorCode: 'ANSIBLE_HOST_KEY_MISMATCH', retryable: false, exitCode: 4, recap, durationMs: 800, outputTail: 'WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!', errorMessage: MISMATCH_MESSAGE, hostKeyMismatch: mismatch });
const failedJob = event('ProvisionFailed', { ...ref, errorCode: 'ANSIBLE_HOST_KEY_MISMATCH', errorMessage: MISMATCH_MESSAGE, step: 'ansible' });
const mismatched: NodeEvent[] = [...acquired, started, failedRun, failedJob];
const trusted = event('HostKeyTrusted', { nodeId, jobId, publicKey: KEY_B.publicKey, fingerprint: KEY_B.fingerprint, previousFingerprint: KEY_A.fingerprint });
const fold = (events: NodeEvent[]) => foldNode(events.map((e) => ({ event: e, at: '2026-11-26T12:00:00.000Z' })));
/** The events a failed run's result decides, for assertions on one field. */
const decideResult = (over: Partial<AnsibleOutcome>): NodeEvent[] => decide({ type: 'RecordAnsibleResult', ...ref, result: outcome(over) }, fold([...acquired, started]));

describe('node decider: the host key from create to run', () => {
  it('records the injected host key with the create intent', () =>
    given(acquired.slice(0, 3)).when({ type: 'RecordServerCreateIntent', ...ref, serverName: 'pl-n1', labels: intent.data.labels, hostKey: KEY_A }).then([intent]));

  it('makes the injected key the one every run trusts', () => expect(fold(acquired).hostKey).toEqual({ ...KEY_A, source: 'created' }));

  it('records what the run executes and the key it trusts', () =>
    given(acquired).when({ type: 'RecordAnsibleStarted', ...ref, playbook: started.data.playbook, playbookDigest: DIGEST, productVersion: '0.1.0', hostKeyFingerprint: KEY_A.fingerprint }).then([started]));

  it('records a local run as trusting no host key', () =>
    given(acquired)
      .when({ type: 'RecordAnsibleStarted', ...ref, playbook: 'p.yml', hostKeyFingerprint: null })
      .then([event('AnsibleStarted', { ...ref, playbook: 'p.yml', hostKeyFingerprint: null })]));

  it('fails a mismatch at once, naming the expected and the presented fingerprints', () =>
    given([...acquired, started]).when({ type: 'RecordAnsibleResult', ...ref, result: outcome() }).then([failedRun, failedJob]));

  it('names only the expected key when ssh did not show the presented one', () => {
    const unseen = { expectedFingerprint: KEY_A.fingerprint, presentedFingerprint: null, presentedPublicKey: null };
    const message = `host key mismatch: the node did not present the expected key ${KEY_A.fingerprint}; no task ran`;
    given([...acquired, started])
      .when({ type: 'RecordAnsibleResult', ...ref, result: outcome({ hostKeyMismatch: unseen }) })
      .then([{ ...failedRun, data: { ...failedRun.data, errorMessage: message, hostKeyMismatch: unseen } }, { ...failedJob, data: { ...failedJob.data, errorMessage: message } }]);
  });

  it('says how far the run got when the key changed between two tasks', () => {
    const [failed] = decideResult({ recap: { ...recap, ok: 12, changed: 3, unreachable: 1 } });
    expect(failed?.type === 'AnsibleFailed' && failed.data.errorMessage).toContain(`expected ${KEY_A.fingerprint}; the run stopped after 12 task(s) had run.`);
  });

  it('drops a presented key that is no clean ed25519 line instead of appending an event that would not decode', () => {
    const forged = { ...mismatch, presentedPublicKey: `${KEY_B.publicKey}\n[evil]:22 ssh-ed25519 AAAA` };
    const [failed] = decideResult({ hostKeyMismatch: forged });
    expect(failed).toMatchObject({ type: 'AnsibleFailed', data: { hostKeyMismatch: { ...mismatch, presentedPublicKey: null } } });
  });

  it('keeps the job error message to one line of at most 300 characters', () => {
    const [failed, final] = decideResult({ hostKeyMismatch: undefined, errorCode: 'ANSIBLE_HOST_FAILED', errorMessage: `task "x" failed\n${'y'.repeat(400)}` });
    expect(failed?.type === 'AnsibleFailed' && failed.data.errorMessage).toHaveLength(300);
    expect(final?.type === 'ProvisionFailed' && final.data.errorMessage).toMatch(/^task "x" failed y+…$/);
  });

  it('remembers the key a failed run saw, and the job that saw it', () => {
    const s = fold(mismatched);
    expect(s.presentedHostKey).toEqual({ ...KEY_B, jobId });
    expect(s.hostKey).toEqual({ ...KEY_A, source: 'created' });
    expect(s.jobs[jobId]).toMatchObject({ playbookDigest: DIGEST, productVersion: '0.1.0', hostKeyFingerprint: KEY_A.fingerprint, hostKeyMismatch: mismatch });
  });
});

describe('node decider: TrustHostKey', () => {
  it('trusts the key the failed run saw', () => given(mismatched).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_B.fingerprint }).then([trusted]));

  it('makes the trusted key the one the next run expects, and forgets the presented one', () => {
    const s = fold([...mismatched, trusted]);
    expect(s.hostKey).toEqual({ ...KEY_B, source: 'trusted' });
    expect(s.presentedHostKey).toBeNull();
  });

  it('treats trusting the trusted key again as done', () => given([...mismatched, trusted]).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_B.fingerprint }).thenNothing());

  it('refuses a fingerprint no run saw (HOST_KEY_NOT_SEEN)', () =>
    given(mismatched).when({ type: 'TrustHostKey', nodeId, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }).thenThrows(HostKeyNotSeen, 'HOST_KEY_NOT_SEEN'));

  it('refuses a trust when no run saw another key', () =>
    given([...acquired.slice(0, 1), event('ProvisionFailed', { ...ref, errorCode: 'X', errorMessage: 'x', step: 'ssh_key' })])
      .when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_A.fingerprint })
      .thenThrows(HostKeyNotSeen, 'HOST_KEY_NOT_SEEN'));

  it('refuses the key that is trusted already while another was presented', () =>
    given(mismatched).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_A.fingerprint }).thenThrows(HostKeyNotSeen));

  it('refuses while a job is queued or running (JOB_ACTIVE)', () =>
    given([...mismatched, requested({ jobId: 'j2', reprovision: true })]).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_B.fingerprint }).thenThrows(JobActive, 'JOB_ACTIVE'));

  it('refuses a key that only an older run saw: a later run started since (HOST_KEY_NOT_SEEN)', () => {
    const j2 = { jobId: 'j2', attempt: 1 };
    const later = [
      ...mismatched,
      requested({ jobId: 'j2', reprovision: true }),
      event('JobStarted', j2),
      event('AnsibleStarted', { ...j2, playbook: 'p.yml', hostKeyFingerprint: KEY_A.fingerprint }),
      event('AnsibleFailed', { ...j2, errorCode: 'ANSIBLE_HOST_UNREACHABLE', retryable: false, exitCode: 4, recap, durationMs: 5, outputTail: '' }),
      event('ProvisionFailed', { ...j2, errorCode: 'ANSIBLE_HOST_UNREACHABLE', errorMessage: 'unreachable', step: 'ansible' }),
    ];
    expect(fold(later).presentedHostKey).toBeNull();
    return given(later).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_B.fingerprint }).thenThrows(HostKeyNotSeen, 'HOST_KEY_NOT_SEEN');
  });

  it('refuses an unknown node', () => given([]).when({ type: 'TrustHostKey', nodeId, fingerprint: KEY_B.fingerprint }).thenThrows(NodeNotFound, 'NODE_NOT_FOUND'));

  it('a key injected into a new server replaces a trusted one and the presented one', () => {
    const j3 = { jobId: 'j3', attempt: 1 };
    const s = fold([...mismatched, event('ProvisionRequested', { ...requested({ jobId: 'j3', reprovision: true }).data }), event('JobStarted', j3), event('ServerCreateRequested', { ...j3, serverName: 'pl-n1', labels: {}, hostKey: KEY_A })]);
    expect(s.hostKey).toEqual({ ...KEY_A, source: 'created' });
    expect(s.presentedHostKey).toBeNull();
  });
});

describe('node decider: expectPlaybook', () => {
  it('records the required digest with a first provision', () =>
    given([]).when({ type: 'RequestProvision', nodeId, jobId, spec: spec(), policy: policy({ maxAttempts: 1 }), expectPlaybook: DIGEST }).then([requested({ expectPlaybook: DIGEST })]));

  it('records it with a re-provision, and the job keeps it for the worker', () => {
    given(mismatched).when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy({ maxAttempts: 1 }), expectPlaybook: DIGEST }).then([requested({ jobId: 'j2', reprovision: true, expectPlaybook: DIGEST })]);
    expect(fold([...mismatched, requested({ jobId: 'j2', reprovision: true, expectPlaybook: DIGEST })]).jobs.j2?.expectPlaybook).toBe(DIGEST);
  });
});
