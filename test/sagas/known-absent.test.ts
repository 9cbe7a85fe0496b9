import { describe, expect, it } from 'vitest';
import { event, type NodeEvent } from '../../src/events/node-events.ts';
import { foldNode } from '../../src/events/node-state.ts';
import { knownAbsent } from '../../src/sagas/host-key-step.ts';
import type { StepContext } from '../../src/sagas/step-context.ts';
import { policy, spec } from '../support/node-fixtures.ts';

/** knownAbsent reads only the delivery count and the state the step was decided from. */
const given = (history: NodeEvent[]) => ({
  onDelivery: (deliveryCount: number) => ({
    atAttempt: (attempt: number) => knownAbsent({ deliveryCount, state: foldNode(history.map((e) => ({ event: e, at: '2026-12-03T12:00:00.000Z' }))) } as StepContext, attempt),
  }),
});

const job = (jobId: string, reprovision = false) =>
  event('ProvisionRequested', { nodeId: 'n1', jobId, ...spec(), maxAttempts: 3, policy: policy(), reprovision });
const attempt = (jobId: string, n: number): NodeEvent[] => [
  event('JobStarted', { jobId, attempt: n }),
  event('SshKeyRegistered', { jobId, attempt: n, keyId: '1', fingerprint: 'aa' }),
  event('ServerCreateRequested', { jobId, attempt: n, serverName: 'web-1', labels: {} }),
];
const failed = (jobId: string, n: number): NodeEvent[] => [
  event('RetryScheduled', { jobId, attempt: n, errorCode: 'PROVIDER_UNAVAILABLE', errorMessage: 'dropped', runAfter: '2026-12-03T12:00:01.000Z' }),
];

describe('knownAbsent: the create skips its look-ups only when no earlier POST can exist', () => {
  it('is true on the first delivery of attempt 1 of the node\'s only job', () =>
    expect(given([job('j1'), ...attempt('j1', 1)]).onDelivery(1).atAttempt(1)).toBe(true));

  it('is false on a redelivery: the worker may have died after the POST', () =>
    expect(given([job('j1'), ...attempt('j1', 1)]).onDelivery(2).atAttempt(1)).toBe(false));

  it('is false on a later attempt: the failed one may have reached the provider', () =>
    expect(given([job('j1'), ...attempt('j1', 1), ...failed('j1', 1), ...attempt('j1', 2)]).onDelivery(1).atAttempt(2)).toBe(false));

  it('is false for a second job of the node, even when the first never recorded a server', () =>
    expect(given([job('j1'), ...attempt('j1', 1), event('JobCancelled', { jobId: 'j1', attempt: 1 }), job('j2', true), ...attempt('j2', 1)]).onDelivery(1).atAttempt(1)).toBe(false));
});
