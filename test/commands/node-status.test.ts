import { describe, expect, it } from 'vitest';
import { event, type NodeEvent } from '../../src/events/node-events.ts';
import { foldNode, type NodeStatus } from '../../src/events/node-state.ts';
import { SshUserUnsupported } from '../../src/commands/domain-errors.ts';
import { given } from '../support/decider-spec.ts';
import { policy, spec } from '../support/node-fixtures.ts';

/**
 * The node status model of ADR 0070, Given/When/Then: a history of events, then the status the
 * node folds to. First provision: pending → acquiring → provisioning → ready | failed.
 * Re-provision of a converged node: provisioning throughout → ready | degraded | unchanged.
 */
const nodeId = 'n1';
const AT = '2026-11-26T12:00:00.000Z';
const recap = { ok: 10, changed: 3, failures: 0, unreachable: 0, skipped: 1, rescued: 0, ignored: 0 };

/** One job's events, by the step it reached. */
const job = (jobId: string, reprovision: boolean) => {
  const ref = (attempt = 1) => ({ jobId, attempt });
  return {
    requested: event('ProvisionRequested', { nodeId, jobId, ...spec(), maxAttempts: 3, policy: policy(), reprovision }),
    started: (attempt = 1) => event('JobStarted', ref(attempt)),
    keyed: event('SshKeyRegistered', { ...ref(), keyId: '42', fingerprint: 'b7:2f:30:00:00:00:00:00:00:00:00:00:00:00:00:01' }),
    intent: event('ServerCreateRequested', { ...ref(), serverName: 'web-1', labels: {} }),
    created: (adopted: boolean) => event('ServerCreated', { ...ref(), serverId: '7', actionIds: [], adopted }),
    ready: event('ServerReady', { ...ref(), serverId: '7', ipv4: '192.0.2.7', ipv6: null, providerStatus: 'running' }),
    ansible: event('AnsibleStarted', { ...ref(), playbook: 'p.yml' }),
    retry: event('RetryScheduled', { ...ref(), errorCode: 'ANSIBLE_HOST_FAILED', errorMessage: 'x', runAfter: '2026-11-26T12:05:00.000Z' }),
    succeeded: [event('AnsibleSucceeded', { ...ref(), recap, durationMs: 1, outputTail: '' }), event('ProvisionSucceeded', ref())],
    failed: (step: string) => event('ProvisionFailed', { ...ref(), errorCode: 'X', errorMessage: 'm', step }),
    cancelRequested: event('JobCancelRequested', { jobId, reason: 'admin' }),
    cancelled: (attempt = 1) => event('JobCancelled', { jobId, attempt }),
  };
};

const first = job('j1', false);
const re = job('j2', true);
const again = job('j3', true);
const ran = (j: ReturnType<typeof job>, adopted = true): NodeEvent[] => [j.requested, j.started(), j.keyed, j.intent, j.created(adopted), j.ready, j.ansible];
const provisioned: NodeEvent[] = [...ran(first, false), ...first.succeeded];

const fold = (events: NodeEvent[]) => foldNode(events.map((event) => ({ event, at: AT })));
const givenHistory = (events: NodeEvent[]) => ({ thenStatus: (status: NodeStatus) => expect(fold(events).status).toBe(status) });

describe('node status: the first provision', () => {
  it.each<[string, NodeEvent[], NodeStatus]>([
    ['requested', [first.requested], 'pending'],
    ['started', [first.requested, first.started()], 'acquiring'],
    ['server ready', ran(first, false).slice(0, -1), 'provisioning'],
    ['retry scheduled', [first.requested, first.started(), first.retry], 'pending'],
    ['succeeded', provisioned, 'ready'],
    ['failed before a server', [first.requested, first.started(), first.failed('ssh_key')], 'failed'],
    ['failed in Ansible', [...ran(first, false), first.failed('ansible')], 'failed'],
    ['cancelled while queued', [first.requested, first.cancelRequested, first.cancelled(0)], 'failed'],
  ])('%s → %s', (_name, events, status) => givenHistory(events).thenStatus(status));

  it('a second try after a failed first provision is still a first provision', () => {
    const second = job('j2', true);
    givenHistory([first.requested, first.started(), first.failed('ssh_key'), second.requested]).thenStatus('pending');
    givenHistory([first.requested, first.started(), first.failed('ssh_key'), second.requested, second.started(), second.failed('ssh_key')]).thenStatus('failed');
  });
});

describe('node status: a re-provision of a ready node', () => {
  it.each<[string, NodeEvent[], NodeStatus]>([
    ['requested', [...provisioned, re.requested], 'provisioning'],
    ['started', [...provisioned, re.requested, re.started()], 'provisioning'],
    ['retry scheduled', [...provisioned, re.requested, re.started(), re.retry], 'provisioning'],
    ['succeeded', [...provisioned, ...ran(re), ...re.succeeded], 'ready'],
    // Nothing touched the server: it is as the last success left it.
    ['failed before Ansible', [...provisioned, re.requested, re.started(), re.keyed, re.failed('ssh_key')], 'ready'],
    ['cancelled while queued', [...provisioned, re.requested, re.cancelRequested, re.cancelled(0)], 'ready'],
    // Ansible ran part of the playbook: the server exists, but its converged state is unknown.
    ['failed in Ansible', [...provisioned, ...ran(re), re.failed('ansible')], 'degraded'],
    ['cancelled during Ansible', [...provisioned, ...ran(re), re.cancelRequested, re.cancelled()], 'degraded'],
    ['failed after a retry that had run Ansible', [...provisioned, ...ran(re), re.retry, re.started(2), event('ProvisionFailed', { jobId: 'j2', attempt: 2, errorCode: 'X', errorMessage: 'm', step: 'ssh_key' })], 'degraded'],
    // The recorded server was gone and the re-provision made a new one that never converged.
    ['failed after replacing a vanished server', [...provisioned, re.requested, re.started(), re.keyed, re.intent, re.created(false), re.failed('server_actions')], 'degraded'],
  ])('%s → %s', (_name, events, status) => givenHistory(events).thenStatus(status));

  it('keeps the server and its address through a failed re-provision', () => {
    const s = fold([...provisioned, ...ran(re), re.failed('ansible')]);
    expect(s).toMatchObject({ providerServerId: '7', ipv4: '192.0.2.7', lastJobId: 'j2', currentJobId: null });
    expect(s.jobs.j1?.status).toBe('succeeded');
    expect(s.jobs.j2).toMatchObject({ status: 'failed', convergedBefore: 'ready', serverChanged: true });
  });
});

describe('node status: a re-provision of a degraded node', () => {
  const degraded = [...provisioned, ...ran(re), re.failed('ansible')];
  it.each<[string, NodeEvent[], NodeStatus]>([
    ['requested', [...degraded, again.requested], 'provisioning'],
    ['succeeded', [...degraded, ...ran(again), ...again.succeeded], 'ready'],
    ['failed before Ansible', [...degraded, again.requested, again.started(), again.failed('ssh_key')], 'degraded'],
    ['failed in Ansible', [...degraded, ...ran(again), again.failed('ansible')], 'degraded'],
  ])('%s → %s', (_name, events, status) => givenHistory(events).thenStatus(status));

  it('can be re-provisioned', () =>
    given(degraded)
      .when({ type: 'RequestReprovision', nodeId, jobId: 'j3', policy: policy() })
      .then([again.requested]));
});

describe('sshUser: only root can be provisioned', () => {
  it('refuses a new node with another ssh user', () =>
    given([]).when({ type: 'RequestProvision', nodeId, jobId: 'j1', spec: spec({ sshUser: 'deploy' }), policy: policy() }).thenThrows(SshUserUnsupported, 'SSH_USER_UNSUPPORTED'));

  it('refuses to re-provision a node recorded with another ssh user', () =>
    given([event('ProvisionRequested', { nodeId, jobId: 'j1', ...spec({ sshUser: 'deploy' }), maxAttempts: 3, policy: policy(), reprovision: false }), first.cancelRequested, first.cancelled(0)])
      .when({ type: 'RequestReprovision', nodeId, jobId: 'j2', policy: policy() })
      .thenThrows(SshUserUnsupported, 'SSH_USER_UNSUPPORTED'));

  it('is not retryable', () => expect(new SshUserUnsupported('deploy')).toMatchObject({ retryable: false, details: { sshUser: 'deploy' } }));
});

describe('WP-CLI unavailable: the saga records it before its first provider call', () => {
  const failure = { type: 'RecordStepFailure', jobId: 'j1', attempt: 1, step: 'wp_cli', errorCode: 'WP_CLI_UNAVAILABLE', errorMessage: 'no phar', retryable: false, now: AT } as const;
  it('fails the job on its first attempt, with no retry', () =>
    given([first.requested, first.started()]).when(failure).then([event('ProvisionFailed', { jobId: 'j1', attempt: 1, errorCode: 'WP_CLI_UNAVAILABLE', errorMessage: 'no phar', step: 'wp_cli' })]));
  it('leaves a new node failed with no server, and a ready node ready', () => {
    const failed = (j: ReturnType<typeof job>) => event('ProvisionFailed', { jobId: j.requested.data.jobId, attempt: 1, errorCode: 'WP_CLI_UNAVAILABLE', errorMessage: 'no phar', step: 'wp_cli' });
    expect(fold([first.requested, first.started(), failed(first)])).toMatchObject({ status: 'failed', providerServerId: null });
    expect(fold([...provisioned, re.requested, re.started(), failed(re)])).toMatchObject({ status: 'ready', providerServerId: '7' });
  });
});
