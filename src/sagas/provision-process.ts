import { activeJob, jobStep, type JobState, type NodeState } from '../events/node-state.ts';

/**
 * The pure policy of the node_provision saga: given a node's folded state and the time,
 * what is the next step? The executor runs it through a port and records the outcome.
 * No I/O here, so every branch is a Given/When/Then test.
 */
export type Step =
  | { kind: 'none' }
  /** A preparation state or a scheduled retry: come back later (nak with this delay). */
  | { kind: 'wait'; delayMs: number; reason: string }
  | { kind: 'start'; jobId: string }
  | { kind: 'cancel'; jobId: string }
  | { kind: 'fail'; jobId: string; attempt: number; step: string; errorCode: string; errorMessage: string; retryable: boolean }
  | { kind: 'ensureSshKey'; jobId: string; attempt: number }
  | { kind: 'recordCreateIntent'; jobId: string; attempt: number; serverName: string }
  | { kind: 'createServer'; jobId: string; attempt: number; serverName: string }
  | { kind: 'pollActions'; jobId: string; attempt: number; actionIds: string[] }
  | { kind: 'awaitServer'; jobId: string; attempt: number; serverId: string }
  | { kind: 'startAnsible'; jobId: string; attempt: number }
  | { kind: 'runAnsible'; jobId: string; attempt: number; host: string; port: number; user: string; timeoutMs: number };

export interface ReactInput {
  nowMs: number;
  /**
   * A recorded poll result triggers the next step at once; without a floor, actions whose progress
   * moves on every poll would be polled in a tight loop against the provider's rate limit.
   */
  minPollIntervalMs: number;
}

/**
 * Poll delays for preparation states (actions running, server initializing, sshd not up):
 * flat at first, then growing to a cap, as Hetzner's CLI polls actions. The executor applies it
 * with the triggering message's delivery count when a poll found nothing new.
 */
export interface PollSchedule {
  initialMs: number;
  flatCount: number;
  factor: number;
  capMs: number;
}

export const DEFAULT_POLL: PollSchedule = { initialMs: 500, flatCount: 10, factor: 1.5, capMs: 10_000 };

/** Same delivery count, same delay: the schedule is deterministic. */
export const pollDelayMs = (deliveryCount: number, p: PollSchedule): number => {
  const grown = p.initialMs * p.factor ** Math.max(0, deliveryCount - p.flatCount);
  return Math.round(Math.min(p.capMs, grown));
};

const since = (iso: string | null | undefined, nowMs: number): number => (iso ? nowMs - Date.parse(iso) : 0);

export const react = (s: NodeState, input: ReactInput): Step => {
  const job = activeJob(s);
  if (!job || !s.spec) return { kind: 'none' };
  // A cancel request wins at the next step boundary, whatever the job was doing.
  if (job.cancelRequested) return { kind: 'cancel', jobId: job.jobId };
  if (job.status === 'queued') {
    const wait = since(job.runAfter, input.nowMs);
    if (job.runAfter && wait < 0) return { kind: 'wait', delayMs: -wait, reason: 'retry scheduled' };
    return { kind: 'start', jobId: job.jobId };
  }
  return nextInAttempt(s, job, input);
};

const nextInAttempt = (s: NodeState, job: JobState, input: ReactInput): Step => {
  const { jobId, attempt, policy, progress } = job;
  const spec = s.spec!;
  const step = jobStep(job);
  const fail = (errorCode: string, errorMessage: string, retryable: boolean): Step => ({ kind: 'fail', jobId, attempt, step, errorCode, errorMessage, retryable });

  // ANSIBLE_TIMEOUT takes precedence: once Ansible runs, only the runner's own timeout applies.
  if (step !== 'ansible' && since(job.attemptStartedAt, input.nowMs) > policy.jobTimeoutMs) {
    return fail('JOB_TIMEOUT', `attempt ${attempt} exceeded the job timeout of ${policy.jobTimeoutMs} ms at step ${step}`, true);
  }
  switch (step) {
    case 'ssh_key':
      return { kind: 'ensureSshKey', jobId, attempt };
    case 'server_create':
      return progress.serverCreateRequested
        ? { kind: 'createServer', jobId, attempt, serverName: spec.name }
        : { kind: 'recordCreateIntent', jobId, attempt, serverName: spec.name };
    case 'server_actions':
    case 'server_ready': {
      const failed = Object.entries(progress.actions).find(([, a]) => a.status === 'error');
      if (failed) return fail('PROVIDER_ACTION_FAILED', `provider action ${failed[0]} failed: ${failed[1].errorCode ?? 'unknown'}`, false);
      if (since(progress.server?.at, input.nowMs) > policy.actionTimeoutMs) {
        return fail('PROVIDER_ACTION_TIMEOUT', `server not ready ${policy.actionTimeoutMs} ms after create`, false);
      }
      if (step === 'server_ready') return { kind: 'awaitServer', jobId, attempt, serverId: progress.server!.serverId };
      const sincePoll = since(progress.lastPolledAt, input.nowMs);
      if (progress.lastPolledAt && sincePoll < input.minPollIntervalMs) {
        return { kind: 'wait', delayMs: input.minPollIntervalMs - sincePoll, reason: 'actions running' };
      }
      const pending = progress.server!.actionIds.filter((id) => progress.actions[id]?.status !== 'success');
      return { kind: 'pollActions', jobId, attempt, actionIds: pending };
    }
    case 'ansible': {
      if (!progress.ansibleStartedAt) return { kind: 'startAnsible', jobId, attempt };
      const host = progress.ready?.ipv4 ?? progress.ready?.ipv6;
      if (!host) return fail('PROVIDER_BAD_RESPONSE', 'server has no address', false);
      const remaining = policy.jobTimeoutMs - since(job.attemptStartedAt, input.nowMs);
      return {
        kind: 'runAnsible',
        jobId,
        attempt,
        host,
        port: spec.sshPort,
        user: spec.sshUser,
        timeoutMs: Math.max(1, Math.min(policy.ansibleTimeoutMs, remaining)),
      };
    }
    default:
      return { kind: 'none' };
  }
};
