import { describe, expect, it } from 'vitest';
import { actionFailedError, assertActionsWithin, classifyActions } from './action-progress.ts';
import type { ActionState } from '../../src/providers/provider-port.ts';

const action = (actionId: string, status: ActionState['status'], error: ActionState['error'] = null): ActionState =>
  ({ actionId, status, progress: status === 'running' ? 40 : 100, error });

describe('classifyActions', () => {
  it('is done when every action succeeded (and for none at all)', () => {
    expect(classifyActions([action('1', 'success'), action('2', 'success')]).outcome).toBe('done');
    expect(classifyActions([]).outcome).toBe('done');
  });

  it('is pending while any action runs', () => {
    const c = classifyActions([action('1', 'success'), action('2', 'running')]);
    expect(c.outcome).toBe('pending');
    expect(c.pending.map((a) => a.actionId)).toEqual(['2']);
    expect(c.done.map((a) => a.actionId)).toEqual(['1']);
  });

  it('is failed as soon as one action failed, even while others run', () => {
    const failed = action('2', 'error', { code: 'unknown_error', message: 'server is locked' });
    const c = classifyActions([action('1', 'running'), failed]);
    expect(c.outcome).toBe('failed');
    expect(c.failed).toEqual([failed]);
    expect(actionFailedError(failed)).toMatchObject({
      code: 'PROVIDER_ACTION_FAILED', retryable: false, details: { actionId: '2', providerCode: 'unknown_error', providerMessage: 'server is locked' },
    });
  });
});

describe('assertActionsWithin', () => {
  it('passes before the limit and throws PROVIDER_ACTION_TIMEOUT at it', () => {
    expect(() => assertActionsWithin(1_000, 1_999, 1_000)).not.toThrow();
    expect(() => assertActionsWithin(1_000, 2_000, 1_000, ['7'])).toThrow(
      expect.objectContaining({ code: 'PROVIDER_ACTION_TIMEOUT', retryable: false, details: { waitedMs: 1_000, limitMs: 1_000, pendingIds: ['7'] } }),
    );
  });
});
