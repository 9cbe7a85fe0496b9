import { ERROR_MESSAGE_MAX, event, hostKeyMismatchSchema, type HostKeyMismatch, type NodeEvent, type Recap } from '../events/node-events.ts';
import { activeJob, isActive, jobStep, type JobState, type NodeState } from '../events/node-state.ts';
import { HostKeyNotSeen, JobActive, JobNotCancellable, JobNotFound, NodeExists, NodeNotFound, SshUserUnsupported, StaleStep, SUPPORTED_SSH_USER } from './domain-errors.ts';
import type { NodeCommand, StepRef } from './node-commands.ts';

export { evolve, initialNodeState } from '../events/node-state.ts';

/**
 * The node decider: pure, no I/O, no clock. It returns the events one decision produces;
 * the shell appends them as one message with the expected version.
 */
export const decide = (cmd: NodeCommand, s: NodeState): NodeEvent[] => {
  switch (cmd.type) {
    case 'RequestProvision': {
      if (s.nodeId) throw new NodeExists(cmd.nodeId);
      if (cmd.spec.sshUser !== SUPPORTED_SSH_USER) throw new SshUserUnsupported(cmd.spec.sshUser);
      return [event('ProvisionRequested', { nodeId: cmd.nodeId, jobId: cmd.jobId, ...cmd.spec, maxAttempts: cmd.policy.maxAttempts, policy: cmd.policy, reprovision: false, ...expecting(cmd) })];
    }
    case 'RequestReprovision': {
      if (!s.nodeId || !s.spec) throw new NodeNotFound(cmd.nodeId);
      const active = activeJob(s);
      if (active) throw new JobActive(active.jobId);
      // A node recorded with another user before this rule existed cannot be converged either.
      if (s.spec.sshUser !== SUPPORTED_SSH_USER) throw new SshUserUnsupported(s.spec.sshUser);
      return [event('ProvisionRequested', { nodeId: s.nodeId, jobId: cmd.jobId, ...s.spec, maxAttempts: cmd.policy.maxAttempts, policy: cmd.policy, reprovision: true, ...expecting(cmd) })];
    }
    case 'TrustHostKey': {
      if (!s.nodeId) throw new NodeNotFound(cmd.nodeId);
      // A run in flight trusts the key it started with; changing it under the run would make its record a lie.
      const active = activeJob(s);
      if (active) throw new JobActive(active.jobId);
      const trusted = s.hostKey ?? null;
      // Trusting the key that is already trusted (a repeated request) changes nothing.
      if (trusted?.source === 'trusted' && trusted.fingerprint === cmd.fingerprint) return [];
      const seen = s.presentedHostKey ?? null;
      if (!seen || seen.fingerprint !== cmd.fingerprint) throw new HostKeyNotSeen(s.nodeId, cmd.fingerprint, seen?.fingerprint ?? null);
      return [event('HostKeyTrusted', { nodeId: s.nodeId, jobId: seen.jobId, publicKey: seen.publicKey, fingerprint: seen.fingerprint, previousFingerprint: trusted?.fingerprint ?? null })];
    }
    case 'RequestCancel': {
      const job = s.jobs[cmd.jobId];
      if (!job) throw new JobNotFound(cmd.jobId);
      if (!isActive(job)) throw new JobNotCancellable(cmd.jobId, job.status);
      if (job.cancelRequested) return [];
      return [event('JobCancelRequested', { jobId: cmd.jobId, reason: cmd.reason })];
    }
    case 'StartAttempt': {
      const job = s.jobs[cmd.jobId];
      if (!job || job.status !== 'queued') throw new StaleStep(cmd.type, 'job is not queued');
      return [event('JobStarted', { jobId: job.jobId, attempt: job.attempt + 1 })];
    }
    case 'RecordSshKey': {
      const job = running(s, cmd);
      if (job.progress.sshKey) throw new StaleStep(cmd.type, 'key already recorded');
      return [event('SshKeyRegistered', { ...ref(cmd), keyId: cmd.keyId, fingerprint: cmd.fingerprint })];
    }
    case 'RecordServerCreateIntent': {
      const job = running(s, cmd);
      if (!job.progress.sshKey || job.progress.serverCreateRequested) throw new StaleStep(cmd.type, 'not at the server-create step');
      return [event('ServerCreateRequested', { ...ref(cmd), serverName: cmd.serverName, labels: cmd.labels, ...(cmd.hostKey ? { hostKey: cmd.hostKey } : {}) })];
    }
    case 'RecordServerCreated': {
      const job = running(s, cmd);
      if (!job.progress.serverCreateRequested || job.progress.server) throw new StaleStep(cmd.type, 'intent missing or server already recorded');
      return [event('ServerCreated', { ...ref(cmd), serverId: cmd.serverId, actionIds: cmd.actionIds, adopted: cmd.adopted })];
    }
    case 'RecordActionPolled': {
      const job = running(s, cmd);
      if (!job.progress.server?.actionIds.includes(cmd.actionId)) throw new StaleStep(cmd.type, `action ${cmd.actionId} is not ours`);
      const known = job.progress.actions[cmd.actionId];
      // ActionPolled is a change log, not a heartbeat: an unchanged poll records nothing.
      if (known && known.status === cmd.status && known.progress === cmd.progress) return [];
      return [event('ActionPolled', { ...ref(cmd), actionId: cmd.actionId, status: cmd.status, progress: cmd.progress, errorCode: cmd.errorCode })];
    }
    case 'RecordServerReady': {
      const job = running(s, cmd);
      if (jobStep(job) !== 'server_ready') throw new StaleStep(cmd.type, `job is at step ${jobStep(job)}`);
      return [event('ServerReady', { ...ref(cmd), serverId: cmd.serverId, ipv4: cmd.ipv4, ipv6: cmd.ipv6, providerStatus: cmd.providerStatus })];
    }
    case 'RecordAnsibleStarted': {
      const job = running(s, cmd);
      // Ansible never starts before ServerReady.
      if (jobStep(job) !== 'ansible' || job.progress.ansibleStartedAt) throw new StaleStep(cmd.type, 'server not ready or Ansible already started');
      const { playbookDigest, productVersion, hostKeyFingerprint } = cmd;
      return [
        event('AnsibleStarted', {
          ...ref(cmd),
          playbook: cmd.playbook,
          ...(playbookDigest === undefined ? {} : { playbookDigest }),
          ...(productVersion === undefined ? {} : { productVersion }),
          ...(hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint }),
        }),
      ];
    }
    case 'RecordAnsibleResult': {
      const job = running(s, cmd);
      if (!job.progress.ansibleStartedAt) throw new StaleStep(cmd.type, 'Ansible was not started');
      const r = cmd.result;
      if (r.ok) {
        return [
          event('AnsibleSucceeded', { ...ref(cmd), recap: r.recap, durationMs: r.durationMs, outputTail: r.outputTail }),
          event('ProvisionSucceeded', ref(cmd)),
        ];
      }
      const code = r.errorCode ?? 'ANSIBLE_UNKNOWN_EXIT';
      const mismatch = r.hostKeyMismatch ? validMismatch(r.hostKeyMismatch) : null;
      const message = oneLine(mismatch ? mismatchMessage(s.nodeId ?? '', mismatch, r.recap) : r.errorMessage);
      return [
        event('AnsibleFailed', {
          ...ref(cmd),
          errorCode: code,
          retryable: r.retryable,
          exitCode: r.exitCode,
          recap: r.recap,
          durationMs: r.durationMs,
          outputTail: r.outputTail,
          ...(message ? { errorMessage: message } : {}),
          ...(mismatch ? { hostKeyMismatch: mismatch } : {}),
        }),
        // A one-line summary is the job's error message; the raw (redacted) tail stays in AnsibleFailed.outputTail and the job view.
        failure(job, cmd, 'ansible', code, message ?? code, r.retryable, r.finishedAt),
      ];
    }
    case 'RecordStepFailure': {
      const job = running(s, cmd);
      return [failure(job, cmd, cmd.step, cmd.errorCode, cmd.errorMessage, cmd.retryable, cmd.now)];
    }
    case 'ConfirmCancel': {
      const job = s.jobs[cmd.jobId];
      if (!job || !isActive(job) || !job.cancelRequested) throw new StaleStep(cmd.type, 'no pending cancel request');
      return [event('JobCancelled', { jobId: job.jobId, attempt: job.attempt })];
    }
  }
};

const ref = (c: StepRef): StepRef => ({ jobId: c.jobId, attempt: c.attempt });

const expecting = (c: { expectPlaybook?: string }): { expectPlaybook?: string } => (c.expectPlaybook ? { expectPlaybook: c.expectPlaybook } : {});

/** At most ERROR_MESSAGE_MAX characters on one line: the event schema holds no more, and a person reads no more. */
const oneLine = (text: string | undefined): string | undefined => {
  const line = text?.replace(/\s+/g, ' ').trim();
  if (!line) return undefined;
  return line.length <= ERROR_MESSAGE_MAX ? line : `${line.slice(0, ERROR_MESSAGE_MAX - 1)}…`;
};

/**
 * The runner reports what ssh showed; what does not fit the event schema is dropped to null rather
 * than appended, since an event that does not decode would stop the node (ADR 0012).
 */
const validMismatch = (m: HostKeyMismatch): HostKeyMismatch | null => {
  const whole = hostKeyMismatchSchema.safeParse(m);
  if (whole.success) return whole.data;
  const parts = hostKeyMismatchSchema.shape;
  if (!parts.expectedFingerprint.safeParse(m.expectedFingerprint).success) return null;
  const fingerprint = parts.presentedFingerprint.safeParse(m.presentedFingerprint);
  const publicKey = parts.presentedPublicKey.safeParse(m.presentedPublicKey);
  return { expectedFingerprint: m.expectedFingerprint, presentedFingerprint: fingerprint.success ? fingerprint.data : null, presentedPublicKey: publicKey.success ? publicKey.data : null };
};

/** A key that changes between two tasks stops the run after the tasks before it (recap `ok` counts them). */
const whatRan = (recap: Recap): string => (recap.ok > 0 ? `the run stopped after ${recap.ok} task(s) had run` : 'no task ran');

const mismatchMessage = (nodeId: string, m: HostKeyMismatch, recap: Recap): string =>
  m.presentedFingerprint
    ? `host key mismatch: the node presented ${m.presentedFingerprint}, expected ${m.expectedFingerprint}; ${whatRan(recap)}. If the server was rebuilt on purpose: pressluft node trust-host-key ${nodeId} --fingerprint ${m.presentedFingerprint}`
    : `host key mismatch: the node did not present the expected key ${m.expectedFingerprint}; ${whatRan(recap)}`;

const running = (s: NodeState, c: StepRef & { type: string }): JobState => {
  const job = s.jobs[c.jobId];
  if (!job || job.status !== 'running') throw new StaleStep(c.type, `job ${c.jobId} is not running`);
  if (job.attempt !== c.attempt) throw new StaleStep(c.type, `attempt ${c.attempt} is over (now ${job.attempt})`);
  return job;
};

/** Retry with the job's own backoff while attempts are left; otherwise fail for good. */
const failure = (job: JobState, c: StepRef, step: string, errorCode: string, errorMessage: string, retryable: boolean, now: string): NodeEvent => {
  const { maxAttempts, backoffMs } = job.policy;
  if (retryable && job.attempt < maxAttempts) {
    const delay = backoffMs[Math.min(job.attempt - 1, backoffMs.length - 1)] ?? 0;
    return event('RetryScheduled', { ...ref(c), errorCode, errorMessage, runAfter: new Date(Date.parse(now) + delay).toISOString() });
  }
  return event('ProvisionFailed', { ...ref(c), errorCode, errorMessage, step });
};
