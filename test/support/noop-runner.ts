import type { AnsibleRunner, RunResult } from '../../src/ansible/runner-port.ts';

/**
 * An in-process stand-in for the runner port that succeeds at once, for tests and benchmarks
 * of the saga's orchestration. The real runner has its own tests against ansible-playbook.
 */
export const noopRunner: AnsibleRunner = {
  run: async (): Promise<RunResult> => ({
    ok: true,
    exitCode: 0,
    errorCode: null,
    retryable: false,
    recap: { ok: 1, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 },
    durationMs: 0,
    outputTail: 'no-op runner',
  }),
};
