import { AppError } from '../errors/app-error.ts';
import type { AnsibleErrorCode, Recap, RunResult } from './runner-port.ts';

/** The exit-code contract from docs/error-codes.md (section ansible). */
export const ANSIBLE_ERRORS: Record<AnsibleErrorCode, { retryable: boolean; meaning: string }> = {
  ANSIBLE_PLAY_ERROR: { retryable: true, meaning: 'ansible-playbook reported a general error (exit 1)' },
  ANSIBLE_HOST_FAILED: { retryable: true, meaning: 'a task failed on the node' },
  ANSIBLE_HOST_UNREACHABLE: { retryable: true, meaning: 'the node could not be reached over SSH' },
  ANSIBLE_HOST_KEY_MISMATCH: { retryable: false, meaning: 'the node presented a host key other than the recorded one; no task ran' },
  ANSIBLE_AUTH_FAILED: { retryable: true, meaning: "the node refused the control plane's SSH key; no task ran" },
  ANSIBLE_SYNTAX_ERROR: { retryable: false, meaning: 'the playbook or its options did not parse (exit 5)' },
  ANSIBLE_UNEXPECTED_ERROR: { retryable: false, meaning: 'ansible-playbook crashed or could not prove success' },
  ANSIBLE_UNKNOWN_EXIT: { retryable: false, meaning: 'ansible-playbook exited with an undocumented code or signal' },
  ANSIBLE_TIMEOUT: { retryable: true, meaning: 'the run exceeded its timeout and was killed' },
  ANSIBLE_CANCELLED: { retryable: false, meaning: 'the run was cancelled and killed' },
};

const EXIT_CODES: Partial<Record<number, AnsibleErrorCode>> = {
  1: 'ANSIBLE_PLAY_ERROR',
  2: 'ANSIBLE_HOST_FAILED',
  4: 'ANSIBLE_HOST_UNREACHABLE',
  5: 'ANSIBLE_SYNTAX_ERROR',
  250: 'ANSIBLE_UNEXPECTED_ERROR',
};

export interface RunOutcome {
  stop: 'timeout' | 'cancelled' | null;
  /** null when the process died from a signal we did not send. */
  exitCode: number | null;
  /** From the callback's stats event; null when the run ended before PLAY RECAP. */
  recap: Recap | null;
}

/** Maps a finished run to its error code, or null for success. The recap outranks the exit code. */
export const classifyRun = ({ stop, exitCode, recap }: RunOutcome): AnsibleErrorCode | null => {
  if (stop === 'cancelled') return 'ANSIBLE_CANCELLED';
  if (stop === 'timeout') return 'ANSIBLE_TIMEOUT';
  if (exitCode === null) return 'ANSIBLE_UNKNOWN_EXIT';
  if (recap && recap.unreachable > 0) return 'ANSIBLE_HOST_UNREACHABLE';
  if (recap && recap.failures > 0) return 'ANSIBLE_HOST_FAILED';
  // Exit 0 without a PLAY RECAP means we cannot tell what ran; never call that a success.
  if (exitCode === 0) return recap ? null : 'ANSIBLE_UNEXPECTED_ERROR';
  // ansible-core 2.14 exits 4 for parser errors too (5 is for bad options). An unreachable host
  // always comes with a recap, so exit 4 without one is a playbook that did not parse (ADR 0022).
  if (exitCode === 4) return 'ANSIBLE_SYNTAX_ERROR';
  return EXIT_CODES[exitCode] ?? 'ANSIBLE_UNKNOWN_EXIT';
};

/** The error a caller throws or records for a failed run: the one-line message, and the redacted tail in details, never raw output. */
export class AnsibleRunError extends AppError {
  constructor(readonly result: RunResult & { errorCode: AnsibleErrorCode }) {
    super(
      result.errorCode,
      result.errorMessage ?? `${ANSIBLE_ERRORS[result.errorCode].meaning} (exit ${result.exitCode ?? 'none'})`,
      result.retryable,
      { exitCode: result.exitCode, recap: result.recap, outputTail: result.outputTail },
    );
  }
}

/** null for a successful run, otherwise the AppError describing it. */
export const toAppError = (result: RunResult): AnsibleRunError | null =>
  result.errorCode === null ? null : new AnsibleRunError({ ...result, errorCode: result.errorCode });
