import type { HostKey, HostKeyMismatch, JobPolicy, NodeSpec, Recap } from '../events/node-events.ts';

/**
 * Commands of the node aggregate. API callers issue the requests, the cancel and the host-key trust; the saga records
 * the outcome of each step it ran through a port with the rest. Time and ids come in
 * with the command so that `decide` stays pure.
 */
export type NodeCommand =
  | { type: 'RequestProvision'; nodeId: string; jobId: string; spec: NodeSpec; policy: JobPolicy; expectPlaybook?: string }
  | { type: 'RequestReprovision'; nodeId: string; jobId: string; policy: JobPolicy; expectPlaybook?: string }
  | { type: 'RequestCancel'; jobId: string; reason: string }
  | { type: 'TrustHostKey'; nodeId: string; fingerprint: string }
  | { type: 'StartAttempt'; jobId: string }
  | ({ type: 'RecordSshKey'; keyId: string; fingerprint: string } & StepRef)
  | ({ type: 'RecordServerCreateIntent'; serverName: string; labels: Record<string, string>; hostKey?: HostKey } & StepRef)
  | ({ type: 'RecordServerCreated'; serverId: string; actionIds: string[]; adopted: boolean } & StepRef)
  | ({ type: 'RecordActionPolled'; actionId: string; status: 'running' | 'success' | 'error'; progress: number; errorCode: string | null } & StepRef)
  | ({ type: 'RecordServerReady'; serverId: string; ipv4: string | null; ipv6: string | null; providerStatus: string } & StepRef)
  | ({ type: 'RecordAnsibleStarted'; playbook: string; playbookDigest?: string; productVersion?: string; hostKeyFingerprint?: string | null } & StepRef)
  | ({ type: 'RecordAnsibleResult'; result: AnsibleOutcome } & StepRef)
  | ({ type: 'RecordStepFailure'; step: string; errorCode: string; errorMessage: string; retryable: boolean; now: string } & StepRef)
  | { type: 'ConfirmCancel'; jobId: string };

/** Saga commands name the attempt they ran in, so a late result from an old attempt is refused. */
export interface StepRef {
  jobId: string;
  attempt: number;
}

export interface AnsibleOutcome {
  ok: boolean;
  errorCode: string | null;
  retryable: boolean;
  exitCode: number | null;
  recap: Recap;
  durationMs: number;
  outputTail: string;
  /** One line for a person: the failing task, host and message (redacted); the tail is kept apart in `outputTail`. */
  errorMessage?: string;
  /** The node presented another host key than the trusted one; no task ran. */
  hostKeyMismatch?: HostKeyMismatch;
  /** When the run ended; the base of a retry's runAfter. */
  finishedAt: string;
}

export type NodeCommandType = NodeCommand['type'];
