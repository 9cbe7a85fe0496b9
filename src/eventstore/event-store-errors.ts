import { TimeoutError } from '@nats-io/transport-node';
import { jserrors } from '@nats-io/jetstream/internal';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { AppError } from '../errors/app-error.ts';

export class WrongExpectedVersion extends AppError {
  constructor(streamId: string, expected: number, actual: number | null) {
    super('WRONG_EXPECTED_VERSION', `stream ${streamId} is not at version ${expected}${actual === null ? '' : ` (it is at ${actual})`}`, true, {
      streamId,
      expected,
      actual,
    });
  }
}

export class EventStoreConfigError extends AppError {
  constructor(message: string) {
    super('EVENTSTORE_MISCONFIGURED', message, false);
  }
}

/** The event stream's effective config is not ours, and this user could not (or may not) update it. */
export class StreamConfigMismatch extends AppError {
  constructor(stream: string, problems: string[], updateError: unknown) {
    const why = updateError ? ` The update was refused (${updateError instanceof Error ? updateError.message : String(updateError)}).` : '';
    super(
      'STREAM_CONFIG_MISMATCH',
      `stream ${stream} config not in force: ${problems.join('; ')}.${why} Update the stream as the NATS operator, then restart: see docs/operations.md, "Stream config"`,
      false,
      { stream, problems },
    );
  }
}

/** Replicated streams need serializable expected-sequence checks, which nats-server has from 2.10 on. */
export class NatsVersionUnsupported extends AppError {
  constructor(version: string, replicas: number, minimum: string) {
    super('NATS_VERSION_UNSUPPORTED', `nats-server ${version} is older than ${minimum}, which PRESSLUFT_STREAM_REPLICAS=${replicas} needs (nats-server #4320): upgrade the cluster`, false, {
      version,
      replicas,
      minimum,
    });
  }
}

/**
 * A read answered by a replica that is behind (direct gets may be served by any current-enough
 * follower of a replicated stream): the read is retried, never folded as if it were the whole stream.
 */
export class StaleRead extends AppError {
  constructor(streamId: string, expected: number, got: number) {
    super('EVENTSTORE_UNAVAILABLE', `stream ${streamId} read up to position ${got}, but it is at ${expected} (a replica behind the leader): retry`, true, { streamId, expected, got });
  }
}

/**
 * No JetStream answered an append in time (a cluster electing a stream leader, a server down), or
 * the leader still holds a copy of the same msgID in flight. Retryable: the append carries its
 * msgID, so a retry of a write that was stored is a duplicate.
 */
export class EventStoreUnavailable extends AppError {
  constructor(streamId: string, cause: unknown) {
    super('EVENTSTORE_UNAVAILABLE', `the event store did not answer the append to ${streamId}: ${cause instanceof Error ? cause.message : String(cause)}`, true, { streamId });
  }
}

/** "duplicate message id is in process": a clustered leader is still storing a copy with this msgID. */
const DUPLICATE_MESSAGE_IN_PROCESS = 10158;

/** What a failed append means to its caller: a version conflict, a retryable outage, or itself. */
export const appendFailure = (streamId: string, expectedVersion: number, e: unknown): unknown => {
  // The client reports "no responders" as JetStreamNotEnabled.
  if (e instanceof jserrors.JetStreamNotEnabled || e instanceof TimeoutError) return new EventStoreUnavailable(streamId, e);
  if (!(e instanceof JetStreamApiError)) return e;
  if (e.code === DUPLICATE_MESSAGE_IN_PROCESS) return new EventStoreUnavailable(streamId, e);
  if (e.code === JetStreamApiCodes.StreamWrongLastSequence) {
    const m = /wrong last sequence: (\d+)/.exec(e.message);
    return new WrongExpectedVersion(streamId, expectedVersion, m?.[1] ? Number(m[1]) : null);
  }
  return e;
};
