import { redact } from '../logging/logger.ts';
import { ANSIBLE_ERRORS } from './ansible-errors.ts';
import type { AnsibleErrorCode } from './runner-port.ts';

export const MAX_ERROR_MESSAGE = 300;

/** The last failed or unreachable result of a run: the one that stopped the host. */
export interface FailedTask {
  task: string;
  status: 'failed' | 'unreachable';
  message: string;
}

export interface FailureFacts {
  errorCode: AnsibleErrorCode;
  exitCode: number | null;
  /** Address of the node, as progress reports it. */
  host: string;
  failed: FailedTask | null;
  /** The task running when the run was stopped or died. */
  lastTask: string | null;
  /** The first `ERROR! …` line ansible-playbook printed (parse errors, a missing role). */
  errorLine: string | null;
  timeoutMs: number;
}

/** Redacted first, then folded onto one line and cut, so a secret is never half-shown by the cut. */
export const oneLine = (text: string, secrets: readonly string[], max = MAX_ERROR_MESSAGE): string => {
  const line = redact(text, secrets).replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
};

/** ssh's note on a new host key (accept-new) precedes its real complaint; it is never the reason. */
const SSH_NOISE = /Warning: Permanently added .*? to the list of known hosts\.?/g;

const during = (task: string | null) => (task ? ` during task "${task}"` : '');

const describe = (f: FailureFacts): string => {
  if (f.failed?.status === 'unreachable') return `${f.host} unreachable at task "${f.failed.task}": ${f.failed.message.replace(SSH_NOISE, '')}`;
  if (f.failed) return `task "${f.failed.task}" failed on ${f.host}: ${f.failed.message}`;
  if (f.errorCode === 'ANSIBLE_TIMEOUT') return `timed out after ${Math.round(f.timeoutMs / 1000)} s${during(f.lastTask)}`;
  if (f.errorCode === 'ANSIBLE_CANCELLED') return `cancelled${during(f.lastTask)}`;
  if (f.errorLine) return f.errorLine;
  return `${ANSIBLE_ERRORS[f.errorCode].meaning} (exit ${f.exitCode ?? 'none'})${during(f.lastTask)}`;
};

/**
 * One line of at most 300 characters a person can act on: the failing task, the host and the
 * module's message, or the ssh reason, or the parser's error. The full tail is outputTail.
 */
export const summarizeFailure = (facts: FailureFacts, secrets: readonly string[]): string => oneLine(describe(facts), secrets);
