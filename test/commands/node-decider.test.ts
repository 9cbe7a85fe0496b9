import { describe, expect, it } from 'vitest';
import { event, type NodeEvent } from '../../src/events/node-events.ts';
import { foldNode, jobStep } from '../../src/events/node-state.ts';
import { JobActive, JobNotCancellable, JobNotFound, NodeExists, NodeNotFound, StaleStep } from '../../src/commands/domain-errors.ts';
import type { AnsibleOutcome } from '../../src/commands/node-commands.ts';
import { given } from '../support/decider-spec.ts';
import { policy, spec } from '../support/node-fixtures.ts';

const nodeId = 'n1';
const jobId = 'j1';
const ref = { jobId, attempt: 1 };
const recap = { ok: 10, changed: 3, failures: 0, unreachable: 0, skipped: 1, rescued: 0, ignored: 0 };

const requested = (over: { jobId?: string; reprovision?: boolean; maxAttempts?: number } = {}) =>
  event('ProvisionRequested', { nodeId, jobId: over.jobId ?? jobId, ...spec(), maxAttempts: over.maxAttempts ?? 3, policy: policy({ maxAttempts: over.maxAttempts ?? 3 }), reprovision: over.reprovision ?? false });
const started = (attempt = 1) => event('JobStarted', { jobId, attempt });
const keyed = event('SshKeyRegistered', { ...ref, keyId: '42', fingerprint: 'b7:2f:30:00:00:00:00:00:00:00:00:00:00:00:00:01' });
const intent = event('ServerCreateRequested', { ...ref, serverName: 'pl-n1', labels: { 'pressluft/node': nodeId } });
const created = event('ServerCreated', { ...ref, serverId: '7', actionIds: ['100', '101'], adopted: false });
const polled = (actionId: string, status: 'running' | 'success' | 'error', progress: number) =>
  event('ActionPolled', { ...ref, actionId, status, progress, errorCode: status === 'error' ? 'server_error' : null });
const ready = event('ServerReady', { ...ref, serverId: '7', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
const ansibleStarted = event('AnsibleStarted', { ...ref, playbook: 'ansible/playbooks/node-provision.yml' });
const acquired: NodeEvent[] = [requested(), started(), keyed, intent, created, polled('100', 'success', 100), polled('101', 'success', 100), ready];
const succeeded: NodeEvent[] = [...acquired, ansibleStarted, event('AnsibleSucceeded', { ...ref, recap, durationMs: 1000, outputTail: 'ok' }), event('ProvisionSucceeded', ref)];

const outcome = (over: Partial<AnsibleOutcome> = {}): AnsibleOutcome => ({
  ok: false,
  errorCode: 'ANSIBLE_HOST_FAILED',
  retryable: true,
  exitCode: 2,
  recap: { ...recap, failures: 1 },
  durationMs: 5000,
  outputTail: 'PLAY [all]\nTASK [x] ***\nfatal: [web-1]: FAILED! => {"msg": "boom"}\nPLAY RECAP',
  errorMessage: 'task "x" failed on web-1: boom',
  finishedAt: '2026-11-26T12:10:00.000Z',
  ...over,
});

describe('node decider: requests', () => {
  it('requests the first provision of a new node', () =>
    given([]).when({ type: 'RequestProvision', nodeId, jobId, spec: spec(), policy: policy() }).then([requested()]));

  it('refuses to create a node that exists', () =>
    given([requested()]).when({ type: 'RequestProvision', nodeId, jobId: 'j2', spec: spec(), policy: policy() }).thenThrows(NodeExists, 'NODE_EXISTS'));

  it('re-provisions an existing node with its recorded spec', () =>
    given(succeeded).when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() }).then([requested({ jobId: 'j2', reprovision: true })]));

  it('refuses to re-provision a node that does not exist', () =>
    given([]).when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() }).thenThrows(NodeNotFound, 'NODE_NOT_FOUND'));

  it('refuses a second provision while a job is queued', () =>
    given([requested()]).when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() }).thenThrows(JobActive, 'JOB_ACTIVE'));

  it('refuses a second provision while a job is running', () =>
    given(acquired).when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() }).thenThrows(JobActive));

  it('allows a re-provision after a failed job', () =>
    given([requested(), started(), event('ProvisionFailed', { ...ref, errorCode: 'PROVIDER_AUTH_FAILED', errorMessage: 'no', step: 'ssh_key' })])
      .when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() })
      .then([requested({ jobId: 'j2', reprovision: true })]));
});

describe('node decider: the acquisition steps', () => {
  it('starts the first attempt of a queued job', () => given([requested()]).when({ type: 'StartAttempt', jobId }).then([started(1)]));
  it('refuses to start a job that is already running', () => given([requested(), started()]).when({ type: 'StartAttempt', jobId }).thenThrows(StaleStep));
  it('records the SSH key', () =>
    given([requested(), started()]).when({ type: 'RecordSshKey', ...ref, keyId: '42', fingerprint: keyed.data.fingerprint }).then([keyed]));
  it('refuses a step result for a queued job', () =>
    given([requested()]).when({ type: 'RecordSshKey', ...ref, keyId: '42', fingerprint: keyed.data.fingerprint }).thenThrows(StaleStep, 'STALE_STEP'));
  it('refuses the SSH key twice', () =>
    given([requested(), started(), keyed]).when({ type: 'RecordSshKey', ...ref, keyId: '42', fingerprint: keyed.data.fingerprint }).thenThrows(StaleStep));
  it('records the create intent after the key', () =>
    given([requested(), started(), keyed]).when({ type: 'RecordServerCreateIntent', ...ref, serverName: 'pl-n1', labels: intent.data.labels }).then([intent]));
  it('refuses the create intent before the key', () =>
    given([requested(), started()]).when({ type: 'RecordServerCreateIntent', ...ref, serverName: 'pl-n1', labels: {} }).thenThrows(StaleStep));
  it('records the created server after the intent', () =>
    given([requested(), started(), keyed, intent]).when({ type: 'RecordServerCreated', ...ref, serverId: '7', actionIds: ['100', '101'], adopted: false }).then([created]));
  it('refuses a created server without a recorded intent', () =>
    given([requested(), started(), keyed]).when({ type: 'RecordServerCreated', ...ref, serverId: '7', actionIds: [], adopted: false }).thenThrows(StaleStep));
  it('records an action poll that changed something', () =>
    given([requested(), started(), keyed, intent, created]).when({ type: 'RecordActionPolled', ...ref, actionId: '100', status: 'running', progress: 40, errorCode: null }).then([polled('100', 'running', 40)]));
  it('records nothing for an unchanged poll', () =>
    given([requested(), started(), keyed, intent, created, polled('100', 'running', 40)])
      .when({ type: 'RecordActionPolled', ...ref, actionId: '100', status: 'running', progress: 40, errorCode: null })
      .thenNothing());
  it('refuses a poll of an action that is not ours', () =>
    given([requested(), started(), keyed, intent, created]).when({ type: 'RecordActionPolled', ...ref, actionId: '999', status: 'success', progress: 100, errorCode: null }).thenThrows(StaleStep));
  it('refuses ServerReady while actions are pending', () =>
    given([requested(), started(), keyed, intent, created, polled('100', 'success', 100)])
      .when({ type: 'RecordServerReady', ...ref, serverId: '7', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' })
      .thenThrows(StaleStep));
  it('records ServerReady once every action succeeded', () =>
    given(acquired.slice(0, -1)).when({ type: 'RecordServerReady', ...ref, serverId: '7', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' }).then([ready]));
  it('refuses a result from an attempt that is over', () =>
    given([requested(), started(), event('RetryScheduled', { ...ref, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: 'x', runAfter: '2026-11-26T12:01:00.000Z' }), started(2)])
      .when({ type: 'RecordSshKey', ...ref, keyId: '42', fingerprint: keyed.data.fingerprint })
      .thenThrows(StaleStep));
});

describe('node decider: Ansible and the outcome', () => {
  it('never starts Ansible before ServerReady', () =>
    given(acquired.slice(0, -1)).when({ type: 'RecordAnsibleStarted', ...ref, playbook: 'p.yml' }).thenThrows(StaleStep));
  it('starts Ansible after ServerReady', () =>
    given(acquired).when({ type: 'RecordAnsibleStarted', ...ref, playbook: ansibleStarted.data.playbook }).then([ansibleStarted]));
  it('refuses an Ansible result without a start', () => given(acquired).when({ type: 'RecordAnsibleResult', ...ref, result: outcome() }).thenThrows(StaleStep));
  it('succeeds the job and the node in one decision', () =>
    given([...acquired, ansibleStarted])
      .when({ type: 'RecordAnsibleResult', ...ref, result: outcome({ ok: true, errorCode: null, exitCode: 0, recap, durationMs: 1000, outputTail: 'ok' }) })
      .then(succeeded.slice(-2)));
  it('schedules a retry with the first backoff after a retryable Ansible failure', () =>
    given([...acquired, ansibleStarted])
      .when({ type: 'RecordAnsibleResult', ...ref, result: outcome() })
      .then([
        event('AnsibleFailed', { ...ref, errorCode: 'ANSIBLE_HOST_FAILED', retryable: true, exitCode: 2, recap: { ...recap, failures: 1 }, durationMs: 5000, outputTail: 'PLAY [all]\nTASK [x] ***\nfatal: [web-1]: FAILED! => {"msg": "boom"}\nPLAY RECAP', errorMessage: 'task "x" failed on web-1: boom' }),
        event('RetryScheduled', { ...ref, errorCode: 'ANSIBLE_HOST_FAILED', errorMessage: 'task "x" failed on web-1: boom', runAfter: '2026-11-26T12:11:00.000Z' }),
      ]));
  it('falls back to the error code when the runner gave no one-line summary, never to the raw tail', () =>
    given([...acquired, ansibleStarted])
      .when({ type: 'RecordAnsibleResult', ...ref, result: outcome({ errorMessage: undefined, errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false, exitCode: 4 }) })
      .then([
        event('AnsibleFailed', { ...ref, errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false, exitCode: 4, recap: { ...recap, failures: 1 }, durationMs: 5000, outputTail: 'PLAY [all]\nTASK [x] ***\nfatal: [web-1]: FAILED! => {"msg": "boom"}\nPLAY RECAP' }),
        event('ProvisionFailed', { ...ref, errorCode: 'ANSIBLE_SYNTAX_ERROR', errorMessage: 'ANSIBLE_SYNTAX_ERROR', step: 'ansible' }),
      ]));
  it('fails at once on a non-retryable Ansible failure', () =>
    given([...acquired, ansibleStarted])
      .when({ type: 'RecordAnsibleResult', ...ref, result: outcome({ errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false, exitCode: 4 }) })
      .then([
        event('AnsibleFailed', { ...ref, errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false, exitCode: 4, recap: { ...recap, failures: 1 }, durationMs: 5000, outputTail: 'PLAY [all]\nTASK [x] ***\nfatal: [web-1]: FAILED! => {"msg": "boom"}\nPLAY RECAP', errorMessage: 'task "x" failed on web-1: boom' }),
        event('ProvisionFailed', { ...ref, errorCode: 'ANSIBLE_SYNTAX_ERROR', errorMessage: 'task "x" failed on web-1: boom', step: 'ansible' }),
      ]));
  it('uses the second backoff on the second attempt and fails after the last', () => {
    const retry1 = event('RetryScheduled', { ...ref, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', runAfter: '2026-11-26T12:01:00.000Z' });
    const ref2 = { jobId, attempt: 2 };
    given([requested(), started(), retry1, started(2)])
      .when({ type: 'RecordStepFailure', ...ref2, step: 'ssh_key', errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', retryable: true, now: '2026-11-26T12:02:00.000Z' })
      .then([event('RetryScheduled', { ...ref2, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', runAfter: '2026-11-26T12:07:00.000Z' })]);
    const retry2 = event('RetryScheduled', { ...ref2, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', runAfter: '2026-11-26T12:07:00.000Z' });
    const ref3 = { jobId, attempt: 3 };
    given([requested(), started(), retry1, started(2), retry2, started(3)])
      .when({ type: 'RecordStepFailure', ...ref3, step: 'ssh_key', errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', retryable: true, now: '2026-11-26T12:08:00.000Z' })
      .then([event('ProvisionFailed', { ...ref3, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '503', step: 'ssh_key' })]);
  });
  it('fails a terminal provider error on the first attempt', () =>
    given([requested(), started()])
      .when({ type: 'RecordStepFailure', ...ref, step: 'ssh_key', errorCode: 'PROVIDER_SSH_KEY_CONFLICT', errorMessage: 'name taken', retryable: false, now: '2026-11-26T12:00:01.000Z' })
      .then([event('ProvisionFailed', { ...ref, errorCode: 'PROVIDER_SSH_KEY_CONFLICT', errorMessage: 'name taken', step: 'ssh_key' })]));
});

describe('node decider: cancellation', () => {
  it('requests the cancel of a running job', () =>
    given(acquired).when({ type: 'RequestCancel', jobId, reason: 'admin' }).then([event('JobCancelRequested', { jobId, reason: 'admin' })]));
  it('treats a second cancel request as already done', () =>
    given([...acquired, event('JobCancelRequested', { jobId, reason: 'admin' })]).when({ type: 'RequestCancel', jobId, reason: 'admin' }).thenNothing());
  it('refuses to cancel a finished job', () => given(succeeded).when({ type: 'RequestCancel', jobId, reason: 'admin' }).thenThrows(JobNotCancellable, 'JOB_NOT_CANCELLABLE'));
  it('refuses to cancel an unknown job', () => given(succeeded).when({ type: 'RequestCancel', jobId: 'nope', reason: 'admin' }).thenThrows(JobNotFound, 'JOB_NOT_FOUND'));
  it('confirms a requested cancel', () =>
    given([requested(), event('JobCancelRequested', { jobId, reason: 'admin' })]).when({ type: 'ConfirmCancel', jobId }).then([event('JobCancelled', { jobId, attempt: 0 })]));
  it('refuses to confirm a cancel nobody asked for', () => given([requested()]).when({ type: 'ConfirmCancel', jobId }).thenThrows(StaleStep));
});

describe('evolve: node and job status move together', () => {
  const fold = (events: NodeEvent[]) => foldNode(events.map((event) => ({ event, at: '2026-11-26T12:00:00.000Z' })));
  it.each([
    ['requested', [requested()], 'pending', 'queued', 'queued'],
    ['started', [requested(), started()], 'acquiring', 'running', 'ssh_key'],
    ['keyed', [requested(), started(), keyed], 'acquiring', 'running', 'server_create'],
    ['created', [requested(), started(), keyed, intent, created], 'acquiring', 'running', 'server_actions'],
    ['actions done', acquired.slice(0, -1), 'acquiring', 'running', 'server_ready'],
    ['ready', acquired, 'provisioning', 'running', 'ansible'],
    ['succeeded', succeeded, 'ready', 'succeeded', 'done'],
    ['retry', [requested(), started(), event('RetryScheduled', { ...ref, errorCode: 'X', errorMessage: '', runAfter: '2026-11-26T12:01:00.000Z' })], 'pending', 'queued', 'queued'],
    ['failed', [requested(), started(), event('ProvisionFailed', { ...ref, errorCode: 'X', errorMessage: 'm', step: 'ssh_key' })], 'failed', 'failed', 'done'],
    ['cancelled', [requested(), event('JobCancelRequested', { jobId, reason: 'r' }), event('JobCancelled', { jobId, attempt: 0 })], 'failed', 'cancelled', 'done'],
  ] as const)('%s', (_name, events, nodeStatus, jobStatus, step) => {
    const s = fold([...events]);
    expect(s.status).toBe(nodeStatus);
    expect(s.jobs[jobId]?.status).toBe(jobStatus);
    expect(jobStep(s.jobs[jobId]!)).toBe(step);
    expect(s.currentJobId).toBe(jobStatus === 'queued' || jobStatus === 'running' ? jobId : null);
  });
  it('starts a new attempt from scratch', () => {
    const s = fold([...acquired, event('RetryScheduled', { ...ref, errorCode: 'X', errorMessage: '', runAfter: '2026-11-26T12:01:00.000Z' }), started(2)]);
    expect(s.jobs[jobId]).toMatchObject({ attempt: 2, status: 'running', progress: { sshKey: null, server: null, ready: null } });
    expect(s.providerServerId).toBe('7');
  });
});
