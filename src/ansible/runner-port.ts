/**
 * The saga runs Ansible only through this port. The adapter owns the subprocess, the temp dir
 * and the exit-code contract from docs/error-codes.md.
 */
export interface RunTarget {
  host: string;
  port: number;
  user: string;
  /** `local` runs on the control plane itself (tests only); default `ssh`. */
  connection?: 'ssh' | 'local';
  /**
   * The host key the control plane recorded for this node (injected at create, or trusted by an
   * operator). With it the run's known_hosts holds exactly this key and ssh checks strictly; a
   * different key fails the run with ANSIBLE_HOST_KEY_MISMATCH before any task. Without it (tests
   * only: the saga always passes one for ssh) a fresh known_hosts trusts the first key for that run.
   */
  hostKey?: { publicKey: string; fingerprint: string };
}

/** What a run that refused the node's host key saw: the key to verify out of band before trust-host-key. */
export interface HostKeyMismatch {
  expectedFingerprint: string;
  /** null when neither ssh nor a scan afterwards named it. */
  presentedFingerprint: string | null;
  /** From ssh-keyscan right after the refusal, kept only when it has the fingerprint ssh refused. */
  presentedPublicKey: string | null;
}

export interface TaskProgress {
  /**
   * 1-based index of the task within the run, and the task count the callback takes at each play's
   * start (what `--list-tasks` lists; a later play adds its count when it starts).
   */
  index: number;
  total: number;
  task: string;
  host: string;
  status: 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';
  /** Handlers are not counted, so they report progress without advancing `index`. */
  handler?: boolean;
}

export interface Recap {
  ok: number;
  changed: number;
  failures: number;
  unreachable: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export type AnsibleErrorCode =
  | 'ANSIBLE_PLAY_ERROR'
  | 'ANSIBLE_HOST_FAILED'
  | 'ANSIBLE_HOST_UNREACHABLE'
  | 'ANSIBLE_HOST_KEY_MISMATCH'
  | 'ANSIBLE_AUTH_FAILED'
  | 'ANSIBLE_SYNTAX_ERROR'
  | 'ANSIBLE_UNEXPECTED_ERROR'
  | 'ANSIBLE_UNKNOWN_EXIT'
  | 'ANSIBLE_TIMEOUT'
  | 'ANSIBLE_CANCELLED';

export interface RunRequest {
  /** Path of the playbook, relative to the project root or absolute. */
  playbook: string;
  node: RunTarget;
  /** Extra-vars; written to vars.yml (0600) in the per-job temp dir, every string `!unsafe`: data, never templated. */
  vars: Record<string, unknown>;
  /** The control plane's SSH private key (OpenSSH format). Held by the run's own ssh-agent, fed over stdin; never written to disk. */
  privateKey?: string;
  /**
   * Values redacted from the output tail, the error message and the streamed log, on top of the
   * private key, the runner's own `secrets` option and the values of HCLOUD_TOKEN,
   * PRESSLUFT_SECRET_KEY and PRESSLUFT_API_TOKEN in the control plane's environment.
   */
  secrets?: string[];
  timeoutMs: number;
  onProgress?: (p: TaskProgress) => void;
  /** Aborting kills the whole process group; the result is ANSIBLE_CANCELLED. */
  signal?: AbortSignal;
}

export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  errorCode: AnsibleErrorCode | null;
  retryable: boolean;
  recap: Recap;
  durationMs: number;
  /** Last 10 KB of combined output, secrets redacted. */
  outputTail: string;
  /**
   * Set when the run failed: one line of at most 300 characters, redacted. The failing task, the
   * host and the module's message; for an unreachable host, the ssh reason.
   */
  errorMessage?: string;
  /** Set with ANSIBLE_HOST_KEY_MISMATCH. */
  hostKeyMismatch?: HostKeyMismatch;
}

export interface AnsibleRunner {
  run(req: RunRequest): Promise<RunResult>;
}
