import { TimeoutError } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { appendFailure, EventStoreUnavailable, WrongExpectedVersion } from '../../src/eventstore/event-store-errors.ts';

// The server's answers as nats-server words them; producing 10158 needs a leader still storing a
// copy of the message, which a test cannot time, so the classification is tested on its own.
const apiError = (err_code: number, code: number, description: string) => new JetStreamApiError({ err_code, code, description });

describe('appendFailure', () => {
  it('makes a msgID still in process on the leader a retryable outage, so the retry gets the duplicate ack', () => {
    const e = appendFailure('n1', 4, apiError(10158, 409, 'duplicate message id is in process'));
    expect(e).toBeInstanceOf(EventStoreUnavailable);
    expect(e).toMatchObject({ code: 'EVENTSTORE_UNAVAILABLE', retryable: true });
  });

  it('makes a wrong last sequence a version conflict with the actual version', () => {
    const e = appendFailure('n1', 4, apiError(10071, 400, 'wrong last sequence: 7'));
    expect(e).toBeInstanceOf(WrongExpectedVersion);
    expect(e).toMatchObject({ code: 'WRONG_EXPECTED_VERSION', details: { expected: 4, actual: 7 } });
  });

  it('makes an unanswered append a retryable outage', () => {
    expect(appendFailure('n1', 0, new TimeoutError())).toBeInstanceOf(EventStoreUnavailable);
  });

  it('passes any other error through', () => {
    const other = apiError(10077, 500, 'store is closed');
    expect(appendFailure('n1', 0, other)).toBe(other);
  });
});
