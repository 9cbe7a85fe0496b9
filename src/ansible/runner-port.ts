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
   * A known_hosts file the control plane keeps for this node. Without it each run gets a fresh
   * one in its temp dir (accept-new then trusts the key for that run only) and ~/.ssh is untouched.
   */
  knownHostsFile?: string;
}

export interface TaskProgress {
  /** 1-based index of the task within the run, and the count from --list-tasks. */
  index: number;
  total: number;
  task: string;
  host: string;
  status: 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';
  /** Handlers are not in --list-tasks, so they report progress without advancing `index`. */
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
  | 'ANSIBLE_SYNTAX_ERROR'
  | 'ANSIBLE_UNEXPECTED_ERROR'
  | 'ANSIBLE_UNKNOWN_EXIT'
  | 'ANSIBLE_TIMEOUT'
  | 'ANSIBLE_CANCELLED';

export interface RunRequest {
  /** Path of the playbook, relative to the project root or absolute. */
  playbook: string;
  node: RunTarget;
  /** Extra-vars; written to vars.json (0600) in the per-job temp dir. */
  vars: Record<string, unknown>;
  /** The control plane's SSH private key (OpenSSH format), materialised 0600 for this run only. */
  privateKey?: string;
  /** Values redacted from the output tail and the streamed log. */
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
}

export interface AnsibleRunner {
  run(req: RunRequest): Promise<RunResult>;
}
