import { describe, expect, it } from 'vitest';
import { event, type NodeEvent } from '../../src/events/node-events.ts';
import { foldNode } from '../../src/events/node-state.ts';
import { DEFAULT_POLL, pollDelayMs, react, type Step } from '../../src/sagas/provision-process.ts';
import { policy, spec } from '../support/node-fixtures.ts';

const T0 = Date.parse('2026-11-26T12:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const jobId = 'j1';
const ref = { jobId, attempt: 1 };

/** Given events (each at a time offset), when the saga reacts at `nowMs`, then this step. */
const given = (history: Array<[NodeEvent, number]>) => ({
  whenAt: (nowOffsetMs: number) => ({
    then: (step: Step | Partial<Step>) => expect(react(foldNode(history.map(([e, t]) => ({ event: e, at: at(t) }))), { nowMs: T0 + nowOffsetMs, minPollIntervalMs: 500 })).toMatchObject(step),
  }),
});

const requested = event('ProvisionRequested', { nodeId: 'n1', jobId, ...spec({ sshPort: 2222 }), maxAttempts: 3, policy: policy({ jobTimeoutMs: 60_000, actionTimeoutMs: 30_000, ansibleTimeoutMs: 45_000 }), reprovision: false });
const started = event('JobStarted', ref);
const keyed = event('SshKeyRegistered', { ...ref, keyId: '1', fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' });
const intent = event('ServerCreateRequested', { ...ref, serverName: 'web-1', labels: {} });
const created = event('ServerCreated', { ...ref, serverId: '9', actionIds: ['a1', 'a2'], adopted: false });
const polled = (id: string, status: 'running' | 'success' | 'error') => event('ActionPolled', { ...ref, actionId: id, status, progress: status === 'running' ? 50 : 100, errorCode: status === 'error' ? 'unknown_error' : null });
const ready = event('ServerReady', { ...ref, serverId: '9', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
const ansible = event('AnsibleStarted', { ...ref, playbook: 'p.yml' });
const upToActions: Array<[NodeEvent, number]> = [[requested, 0], [started, 0], [keyed, 1000], [intent, 1000], [created, 2000]];

describe('saga react: what comes next', () => {
  it('does nothing for a node without an active job', () => given([]).whenAt(0).then({ kind: 'none' }));
  it('starts a queued job', () => given([[requested, 0]]).whenAt(0).then({ kind: 'start', jobId }));
  it('ensures the SSH key first', () => given([[requested, 0], [started, 0]]).whenAt(10).then({ kind: 'ensureSshKey', jobId, attempt: 1 }));
  it('records the create intent before creating', () => given([[requested, 0], [started, 0], [keyed, 10]]).whenAt(20).then({ kind: 'recordCreateIntent', serverName: 'web-1' }));
  it('creates (or adopts) the server after the intent', () => given([[requested, 0], [started, 0], [keyed, 10], [intent, 10]]).whenAt(20).then({ kind: 'createServer', serverName: 'web-1' }));
  it('polls every pending action', () => given(upToActions).whenAt(3000).then({ kind: 'pollActions', actionIds: ['a1', 'a2'] }));
  it('polls only the actions still pending', () => given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'running'), 2500]]).whenAt(3000).then({ kind: 'pollActions', actionIds: ['a2'] }));
  it('waits out the poll interval after a recorded poll instead of polling in a loop', () =>
    given([...upToActions, [polled('a1', 'running'), 2500]]).whenAt(2700).then({ kind: 'wait', delayMs: 300, reason: 'actions running' }));
  it('fails with PROVIDER_ACTION_FAILED when an action ended in error', () =>
    given([...upToActions, [polled('a1', 'error'), 2500]]).whenAt(3000).then({ kind: 'fail', errorCode: 'PROVIDER_ACTION_FAILED', retryable: false, step: 'server_actions' }));
  it('fails with PROVIDER_ACTION_TIMEOUT past the action wait limit', () =>
    given([...upToActions, [polled('a1', 'running'), 2500]]).whenAt(2000 + 30_001).then({ kind: 'fail', errorCode: 'PROVIDER_ACTION_TIMEOUT', retryable: false }));
  it('awaits the server once all actions succeeded', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600]]).whenAt(3000).then({ kind: 'awaitServer', serverId: '9' }));
  it('applies the action wait limit to the server-ready wait too', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600]]).whenAt(2000 + 30_001).then({ kind: 'fail', errorCode: 'PROVIDER_ACTION_TIMEOUT' }));
  it('starts Ansible only after ServerReady', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600], [ready, 3000]]).whenAt(3100).then({ kind: 'startAnsible' }));
  it('runs Ansible against the ready address with the node user and port', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600], [ready, 3000], [ansible, 3100]])
      .whenAt(3200)
      .then({ kind: 'runAnsible', host: '127.0.0.1', port: 2222, user: 'root', timeoutMs: 45_000 }));
  it('shortens the Ansible timeout to what is left of the job timeout', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600], [ready, 3000], [ansible, 3100]])
      .whenAt(40_000)
      .then({ kind: 'runAnsible', timeoutMs: 20_000 }));
  it('lets a running Ansible step outlive the job timeout: ANSIBLE_TIMEOUT takes precedence', () =>
    given([...upToActions, [polled('a1', 'success'), 2500], [polled('a2', 'success'), 2600], [ready, 3000], [ansible, 3100]]).whenAt(70_000).then({ kind: 'runAnsible', timeoutMs: 1 }));
  it('fails a non-Ansible step past the job timeout with retryable JOB_TIMEOUT', () =>
    given([[requested, 0], [started, 0]]).whenAt(60_001).then({ kind: 'fail', errorCode: 'JOB_TIMEOUT', retryable: true, step: 'ssh_key' }));
  it('waits for a scheduled retry until its runAfter', () =>
    given([[requested, 0], [started, 0], [event('RetryScheduled', { ...ref, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '', runAfter: at(60_000) }), 1000]])
      .whenAt(15_000)
      .then({ kind: 'wait', delayMs: 45_000 }));
  it('starts the next attempt once runAfter has passed', () =>
    given([[requested, 0], [started, 0], [event('RetryScheduled', { ...ref, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: '', runAfter: at(60_000) }), 1000]])
      .whenAt(60_000)
      .then({ kind: 'start', jobId }));
  it('cancels at the next step boundary, whatever the step', () =>
    given([...upToActions, [event('JobCancelRequested', { jobId, reason: 'x' }), 2500]]).whenAt(3000).then({ kind: 'cancel', jobId }));
  it('cancels a queued job too', () => given([[requested, 0], [event('JobCancelRequested', { jobId, reason: 'x' }), 1]]).whenAt(3000).then({ kind: 'cancel', jobId }));
  it('does nothing after the job succeeded', () =>
    given([...upToActions, [ready, 3000], [ansible, 3100], [event('ProvisionSucceeded', ref), 4000]]).whenAt(5000).then({ kind: 'none' }));
});

describe('poll schedule', () => {
  it('is flat, then grows by the factor, up to the cap', () => {
    expect([1, 5, 10, 11, 12, 13].map((n) => pollDelayMs(n, DEFAULT_POLL))).toEqual([500, 500, 500, 750, 1125, 1688]);
    expect(pollDelayMs(100, DEFAULT_POLL)).toBe(10_000);
  });
  it('is deterministic: the same delivery count gives the same delay', () => {
    expect(Array.from({ length: 30 }, (_, i) => pollDelayMs(i + 1, DEFAULT_POLL))).toEqual(Array.from({ length: 30 }, (_, i) => pollDelayMs(i + 1, DEFAULT_POLL)));
  });
});
