import type { HostKey } from '../events/node-events.ts';
import type { Logger } from '../logging/logger.ts';
import { oneLine } from './failure-summary.ts';
import { presentedHostKey } from './host-key.ts';
import type { Recap, RunResult } from './runner-port.ts';

export interface MismatchFacts {
  host: string;
  port: number;
  /** The recorded key the run trusted. */
  hostKey: HostKey;
  /** The fingerprint ssh said the node sent, when it said one. */
  sshSaid: string | null;
  exitCode: number | null;
  recap: Recap;
  started: number;
  outputTail: string;
  secrets: readonly string[];
}

/**
 * The result of a run whose host key ssh refused: no task ran (or, when the key changed mid-run, no
 * further task), and no retry can change that. It carries what the node presented (host-key.ts: presentedHostKey), for an operator's re-trust.
 */
export const hostKeyMismatchResult = async (log: Logger, f: MismatchFacts): Promise<RunResult> => {
  const hostKeyMismatch = await presentedHostKey(f.host, f.port, f.hostKey.fingerprint, f.sshSaid);
  const presented = hostKeyMismatch.presentedFingerprint ?? 'unknown';
  const errorMessage = oneLine(
    `host key mismatch at ${f.host}:${f.port}: expected ${f.hostKey.fingerprint}, presented ${presented}; ${f.recap.ok > 0 ? `the run stopped after ${f.recap.ok} task(s) had run` : 'no task ran'}. Verify the key out of band, then trust-host-key`,
    f.secrets,
  );
  log.error({ exitCode: f.exitCode, errorCode: 'ANSIBLE_HOST_KEY_MISMATCH', ...hostKeyMismatch, errorMessage }, 'the node presented a host key other than the recorded one');
  return {
    ok: false,
    exitCode: f.exitCode,
    errorCode: 'ANSIBLE_HOST_KEY_MISMATCH',
    retryable: false,
    recap: f.recap,
    durationMs: Date.now() - f.started,
    outputTail: f.outputTail,
    errorMessage,
    hostKeyMismatch,
  };
};
