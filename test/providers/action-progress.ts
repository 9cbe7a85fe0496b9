import { ProviderError, type ActionState } from '../../src/providers/provider-port.ts';

/**
 * Test support: a synchronous wait on provider actions, for adapter tests that run without the saga.
 * In production the saga records each poll as ActionPolled and decides from the folded state
 * (src/sagas/provision-process.ts); these helpers mirror its codes.
 */
export interface ActionClassification {
  done: ActionState[];
  pending: ActionState[];
  failed: ActionState[];
  /** `failed` as soon as one action failed (the outcome is decided), else `pending` while any runs, else `done`. */
  outcome: 'done' | 'pending' | 'failed';
}

export const classifyActions = (states: readonly ActionState[]): ActionClassification => {
  const done = states.filter((s) => s.status === 'success');
  const pending = states.filter((s) => s.status === 'running');
  const failed = states.filter((s) => s.status === 'error');
  const outcome = failed.length > 0 ? 'failed' : pending.length > 0 ? 'pending' : 'done';
  return { done, pending, failed, outcome };
};

/** An action that ended in `error`, carrying the provider's own code (e.g. Hetzner's `unknown_error`). */
export const actionFailedError = (failed: ActionState): ProviderError =>
  new ProviderError(
    'PROVIDER_ACTION_FAILED',
    `provider action ${failed.actionId} failed: ${failed.error?.code ?? 'unknown'}: ${failed.error?.message ?? 'no message'}`,
    false,
    { actionId: failed.actionId, providerCode: failed.error?.code ?? null, providerMessage: failed.error?.message ?? null },
  );

/**
 * Throws PROVIDER_ACTION_TIMEOUT once the wait that began at startedAtMs has lasted limitMs.
 * Creates take 60–90 s and custom images over 10 minutes (docs/providers.md, "Hetzner API facts"), so the limit comes from the job policy.
 */
export const assertActionsWithin = (startedAtMs: number, nowMs: number, limitMs: number, pendingIds: readonly string[] = []): void => {
  const waitedMs = nowMs - startedAtMs;
  if (waitedMs >= limitMs) {
    throw new ProviderError(
      'PROVIDER_ACTION_TIMEOUT',
      `provider actions still running after ${waitedMs} ms (limit ${limitMs} ms)`,
      false,
      { waitedMs, limitMs, pendingIds: [...pendingIds] },
    );
  }
};
