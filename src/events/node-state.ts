import type { HostKey, HostKeyMismatch, JobPolicy, NodeEvent, NodeSpec, Recap } from './node-events.ts';

/**
 * First provision (the node never converged): pending → acquiring → provisioning → ready | failed.
 * Re-provision of a converged node: ready | degraded → provisioning → ready, or on failure or
 * cancel: degraded if the job changed the server, else the status it had (ADR 0070).
 */
export type NodeStatus = 'pending' | 'acquiring' | 'provisioning' | 'ready' | 'degraded' | 'failed';
/** A node whose server converged at least once; its server exists and worked. */
export type ConvergedStatus = Extract<NodeStatus, 'ready' | 'degraded'>;
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobStep = 'queued' | 'ssh_key' | 'server_create' | 'server_actions' | 'server_ready' | 'ansible' | 'done';

/** What the current attempt has achieved so far. A new attempt starts from scratch and relies on lookups. */
export interface AttemptProgress {
  sshKey: { keyId: string; fingerprint: string } | null;
  serverCreateRequested: { serverName: string; at: string } | null;
  server: { serverId: string; actionIds: string[]; adopted: boolean; at: string } | null;
  actions: Record<string, { status: 'running' | 'success' | 'error'; progress: number; errorCode: string | null }>;
  /** When an action poll last recorded a still-running action: the next poll waits its interval from here. */
  lastPolledAt: string | null;
  ready: { ipv4: string | null; ipv6: string | null } | null;
  ansibleStartedAt: string | null;
}

export interface JobState {
  jobId: string;
  status: JobStatus;
  attempt: number;
  policy: JobPolicy;
  requestedAt: string;
  startedAt: string | null;
  attemptStartedAt: string | null;
  finishedAt: string | null;
  runAfter: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** The redacted tail of the last Ansible run's output (10 KB at most). */
  outputTail: string | null;
  cancelRequested: boolean;
  lastRecap: Recap | null;
  progress: AttemptProgress;
  /** The node's status when this job was requested if the node had converged; null for a provision of a node that never did. */
  convergedBefore: ConvergedStatus | null;
  /** Some attempt ran Ansible or made a new server: the server may no longer be as the last success left it. */
  serverChanged: boolean;
  /** The bundle digest the request required (ProvisionRequested.expectPlaybook). */
  expectPlaybook?: string;
  /** What the last Ansible run of this job executed and trusted (AnsibleStarted); absent in states stored before they existed. */
  playbookDigest?: string | null;
  productVersion?: string | null;
  hostKeyFingerprint?: string | null;
  /** The last run's host key mismatch (AnsibleFailed), if it had one. */
  hostKeyMismatch?: HostKeyMismatch | null;
}

/** The key every run trusts: injected at create, or trusted by an operator after a mismatch. */
export interface TrustedHostKey extends HostKey {
  source: 'created' | 'trusted';
}

/** The key a failed run saw instead of the trusted one, and the job of that run. */
export interface PresentedHostKey extends HostKey {
  jobId: string;
}

export interface NodeState {
  nodeId: string | null;
  spec: NodeSpec | null;
  status: NodeStatus | null;
  providerServerId: string | null;
  ipv4: string | null;
  ipv6: string | null;
  currentJobId: string | null;
  lastJobId: string | null;
  jobs: Record<string, JobState>;
  /** Absent (read as null) in states stored before host keys existed. */
  hostKey?: TrustedHostKey | null;
  presentedHostKey?: PresentedHostKey | null;
}

export const initialNodeState = (): NodeState => ({
  nodeId: null,
  spec: null,
  status: null,
  providerServerId: null,
  ipv4: null,
  ipv6: null,
  currentJobId: null,
  lastJobId: null,
  jobs: {},
  hostKey: null,
  presentedHostKey: null,
});

const emptyProgress = (): AttemptProgress => ({
  sshKey: null,
  serverCreateRequested: null,
  server: null,
  actions: {},
  lastPolledAt: null,
  ready: null,
  ansibleStartedAt: null,
});

export const isActive = (job: JobState | undefined): boolean => job?.status === 'queued' || job?.status === 'running';

export const activeJob = (s: NodeState): JobState | null => {
  const job = s.currentJobId ? s.jobs[s.currentJobId] : undefined;
  return job && isActive(job) ? job : null;
};

/** The step a job is in, derived from its progress so that it can never disagree with it. */
export const jobStep = (job: JobState): JobStep => {
  if (!isActive(job)) return 'done';
  if (job.status === 'queued') return 'queued';
  const p = job.progress;
  if (!p.sshKey) return 'ssh_key';
  if (!p.server) return 'server_create';
  const actions = Object.values(p.actions);
  if (p.server.actionIds.some((id) => p.actions[id]?.status !== 'success') || actions.some((a) => a.status !== 'success')) {
    return 'server_actions';
  }
  if (!p.ready) return 'server_ready';
  return 'ansible';
};

const updateJob = (s: NodeState, jobId: string, f: (j: JobState) => Partial<JobState>): NodeState => {
  const job = s.jobs[jobId];
  if (!job) return s;
  return { ...s, jobs: { ...s.jobs, [jobId]: { ...job, ...f(job) } } };
};

const updateProgress = (s: NodeState, jobId: string, f: (p: AttemptProgress) => Partial<AttemptProgress>): NodeState =>
  updateJob(s, jobId, (j) => ({ progress: { ...j.progress, ...f(j.progress) } }));

/** Pure fold of one event. `at` is the event's occurredAt: evolve never reads a clock. */
export const evolve = (s: NodeState, e: NodeEvent, at: string): NodeState => {
  switch (e.type) {
    case 'ProvisionRequested': {
      const { nodeId, jobId, policy, name, provider, serverType, location, image, sshUser, sshPort, expectPlaybook } = e.data;
      const job: JobState = {
        jobId,
        status: 'queued',
        attempt: 0,
        policy,
        requestedAt: at,
        startedAt: null,
        attemptStartedAt: null,
        finishedAt: null,
        runAfter: null,
        errorCode: null,
        errorMessage: null,
        outputTail: null,
        cancelRequested: false,
        lastRecap: null,
        progress: emptyProgress(),
        // Derived from the state, not the event's `reprovision` flag: a re-provision after a failed first provision is still a first provision.
        convergedBefore: converged(s.status),
        serverChanged: false,
        ...(expectPlaybook ? { expectPlaybook } : {}),
        playbookDigest: null,
        productVersion: null,
        hostKeyFingerprint: null,
        hostKeyMismatch: null,
      };
      return {
        ...s,
        nodeId,
        spec: { name, provider, serverType, location, image, sshUser, sshPort },
        status: job.convergedBefore ? 'provisioning' : 'pending',
        currentJobId: jobId,
        jobs: { ...s.jobs, [jobId]: job },
      };
    }
    case 'JobStarted':
      return {
        ...updateJob(s, e.data.jobId, (j) => ({
          status: 'running',
          attempt: e.data.attempt,
          startedAt: j.startedAt ?? at,
          attemptStartedAt: at,
          runAfter: null,
          progress: emptyProgress(),
        })),
        status: whileRunning(s, e.data.jobId, 'acquiring'),
      };
    case 'SshKeyRegistered':
      return updateProgress(s, e.data.jobId, () => ({ sshKey: { keyId: e.data.keyId, fingerprint: e.data.fingerprint } }));
    case 'ServerCreateRequested': {
      const next = updateProgress(s, e.data.jobId, () => ({ serverCreateRequested: { serverName: e.data.serverName, at } }));
      const key = e.data.hostKey;
      // A key injected into a new server replaces every earlier expectation, and a key seen against the old one no longer matters.
      return key ? { ...next, hostKey: { publicKey: key.publicKey, fingerprint: key.fingerprint, source: 'created' }, presentedHostKey: null } : next;
    }
    case 'ServerCreated':
      return {
        ...updateJob(s, e.data.jobId, (j) => ({
          progress: { ...j.progress, server: { serverId: e.data.serverId, actionIds: e.data.actionIds, adopted: e.data.adopted, at } },
          serverChanged: j.serverChanged || !e.data.adopted,
        })),
        providerServerId: e.data.serverId,
      };
    case 'ActionPolled':
      return updateProgress(s, e.data.jobId, (p) => ({
        actions: { ...p.actions, [e.data.actionId]: { status: e.data.status, progress: e.data.progress, errorCode: e.data.errorCode } },
        // Only a poll that saw work still running sets the floor; a finished action is followed up at once.
        lastPolledAt: e.data.status === 'running' ? at : p.lastPolledAt,
      }));
    case 'ServerReady':
      return {
        ...updateProgress(s, e.data.jobId, () => ({ ready: { ipv4: e.data.ipv4, ipv6: e.data.ipv6 } })),
        status: 'provisioning',
        ipv4: e.data.ipv4,
        ipv6: e.data.ipv6,
      };
    case 'AnsibleStarted':
      // A key seen by an older run is no longer what the node presents: only the latest failed run's key may be trusted.
      return updateJob({ ...s, presentedHostKey: null }, e.data.jobId, (j) => ({
        progress: { ...j.progress, ansibleStartedAt: at },
        serverChanged: true,
        playbookDigest: e.data.playbookDigest ?? null,
        productVersion: e.data.productVersion ?? null,
        hostKeyFingerprint: e.data.hostKeyFingerprint ?? null,
        hostKeyMismatch: null,
      }));
    case 'AnsibleSucceeded':
      return updateJob(s, e.data.jobId, () => ({ lastRecap: e.data.recap, outputTail: e.data.outputTail }));
    case 'AnsibleFailed': {
      const mismatch = e.data.hostKeyMismatch ?? null;
      const next = updateJob(s, e.data.jobId, () => ({ lastRecap: e.data.recap, outputTail: e.data.outputTail, hostKeyMismatch: mismatch }));
      const publicKey = mismatch?.presentedPublicKey;
      const fingerprint = mismatch?.presentedFingerprint;
      // Only a key the run saw whole can be trusted later (TrustHostKey).
      return { ...next, presentedHostKey: publicKey && fingerprint ? { publicKey, fingerprint, jobId: e.data.jobId } : null };
    }
    case 'RetryScheduled':
      return {
        ...updateJob(s, e.data.jobId, () => ({
          status: 'queued',
          runAfter: e.data.runAfter,
          errorCode: e.data.errorCode,
          errorMessage: e.data.errorMessage,
        })),
        status: whileRunning(s, e.data.jobId, 'pending'),
      };
    case 'ProvisionFailed':
      return {
        ...updateJob(s, e.data.jobId, () => ({
          status: 'failed',
          finishedAt: at,
          runAfter: null,
          errorCode: e.data.errorCode,
          errorMessage: e.data.errorMessage,
        })),
        status: afterFailure(s.jobs[e.data.jobId]),
        currentJobId: null,
        lastJobId: e.data.jobId,
      };
    case 'ProvisionSucceeded':
      return {
        ...updateJob(s, e.data.jobId, () => ({ status: 'succeeded', finishedAt: at, runAfter: null, errorCode: null, errorMessage: null })),
        status: 'ready',
        currentJobId: null,
        lastJobId: e.data.jobId,
      };
    case 'JobCancelRequested':
      return updateJob(s, e.data.jobId, () => ({ cancelRequested: true }));
    case 'JobCancelled':
      return {
        // No rollback: a cancel ends the node like a failure does.
        ...updateJob(s, e.data.jobId, () => ({ status: 'cancelled', finishedAt: at, runAfter: null, errorCode: 'JOB_CANCELLED', errorMessage: 'cancelled by an admin' })),
        status: afterFailure(s.jobs[e.data.jobId]),
        currentJobId: null,
        lastJobId: e.data.jobId,
      };
    case 'HostKeyTrusted':
      return { ...s, hostKey: { publicKey: e.data.publicKey, fingerprint: e.data.fingerprint, source: 'trusted' }, presentedHostKey: null };
  }
};

const converged = (status: NodeStatus | null): ConvergedStatus | null => (status === 'ready' || status === 'degraded' ? status : null);

/** A converged node stays `provisioning` for the whole re-provision: its server exists and serves meanwhile. */
const whileRunning = (s: NodeState, jobId: string, firstProvision: NodeStatus): NodeStatus => (s.jobs[jobId]?.convergedBefore ? 'provisioning' : firstProvision);

/**
 * A failed or cancelled job never claims more than it knows: a node that never converged is
 * `failed`; a converged node whose server this job did not touch keeps its status; one whose
 * server it touched (Ansible ran, or a new server replaced a vanished one) is `degraded`.
 */
const afterFailure = (job: JobState | undefined): NodeStatus => {
  if (!job?.convergedBefore) return 'failed';
  return job.serverChanged ? 'degraded' : job.convergedBefore;
};

/** Folds a sequence of (event, occurredAt) pairs from the initial state. */
export const foldNode = (events: Iterable<{ event: NodeEvent; at: string }>, from: NodeState = initialNodeState()): NodeState => {
  let s = from;
  for (const { event, at } of events) s = evolve(s, event, at);
  return s;
};
