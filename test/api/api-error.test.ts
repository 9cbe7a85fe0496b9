import { describe, expect, it } from 'vitest';
import { fromDomainError } from '../../src/api/api-error.ts';
import { EventStoreUnavailable, WrongExpectedVersion } from '../../src/eventstore/event-store-errors.ts';

describe('domain errors at the API', () => {
  it('answers a version conflict that outlasted the handler’s retries with 409 conflict, not 500', () => {
    const e = fromDomainError(new WrongExpectedVersion('node.n_1', 3, 4));
    expect(e?.status).toBe(409);
    expect(e?.code).toBe('conflict');
  });

  it('answers an unanswered append with 503 not_ready', () => {
    const e = fromDomainError(new EventStoreUnavailable('node.n_1', new Error('no responders')));
    expect(e?.status).toBe(503);
    expect(e?.code).toBe('not_ready');
  });
});
