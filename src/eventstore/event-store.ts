import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../logging/logger.ts';
import { TOKEN_SAFE_ID } from '../events/ids.ts';
import { decodeDecision, encodeDecision, type StoredDecision } from '../events/event-codec.ts';
import type { EventEnvelope } from '../events/envelope.ts';
import { assertServerSupportsReplicas, connectNats, type NatsTarget } from './nats-connection.ts';
import { durableConsumerState, ensureDurableConsumer, type Delivery, type DurableConsumerSpec, type DurableConsumerState } from './durable-consumers.ts';
import { ensureCaptureStream, ensureEventStream } from './stream-config.ts';
import { appendFailure } from './event-store-errors.ts';
import { pingNats, subscribeJson, type PingResult } from './core-nats.ts';

export { EventStoreConfigError, EventStoreUnavailable, NatsVersionUnsupported, StreamConfigMismatch, WrongExpectedVersion } from './event-store-errors.ts';
export type { PingResult } from './core-nats.ts';

export interface EventStoreOptions {
  streamName: string;
  /** Subjects are `<prefix>.node.<nodeId>`: one subject per aggregate, because the expected-sequence check looks at the exact subject only. */
  subjectPrefix: string;
  duplicateWindowMs: number;
  /** The stream's and every durable consumer's replicas: 1 (one server) or 3 (a cluster, nats-server >= 2.10). Default 1. */
  replicas?: number;
  logger: Logger;
}

export interface AppendResult {
  position: number;
  duplicate: boolean;
}

/** One stored message as it is in the log, not decoded: for readers that must survive a bad one. */
export interface RawStoredMessage {
  position: number;
  subject: string;
  data: Uint8Array;
  /** When JetStream stored it, in ms since the epoch: a number, since a Date and an ISO string per message cost a replay dearly. */
  storedAtMs: number;
}

/** A durable consumer's deliveries, until close(). */
export interface Deliveries extends AsyncIterable<Delivery> {
  close(): Promise<unknown>;
}

/** How many messages an ordered reader asks for at a time. */
export const READ_BATCH = 4096;
/** A node's stream is short; an SSE follower needs no big batches. */
const FOLLOW_BATCH = 256;
const ADVISORY_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/**
 * A pull request's life. When a cluster moves a consumer's leader, an open pull is lost with the
 * old leader and the client notices only when its heartbeats stop (two heartbeats, half the
 * expiry each): with the client's 30 s default a worker stood idle for about a minute.
 */
const PULL_EXPIRES_MS = 5_000;

/**
 * The only owner of NATS: the connection, JetStream and its manager stay in here, and callers
 * ask for operations by name (append, read, follow, durable consumers, progress, ping).
 */
export class EventStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: EventStoreOptions,
  ) {}

  /** Connects (a URL, a comma-separated list, or connection options with credentials) and ensures the stream with an asserted config. */
  static async open(target: NatsTarget, opts: EventStoreOptions): Promise<EventStore> {
    const nc = await connectNats(target, opts.logger);
    try {
      assertServerSupportsReplicas(nc.info?.version ?? '0.0.0', opts.replicas ?? 1);
      const store = new EventStore(nc, jetstream(nc), await jetstreamManager(nc), opts);
      await ensureEventStream(store.jsm, { streamName: opts.streamName, subjects: store.allSubjects, duplicateWindowMs: opts.duplicateWindowMs, replicas: opts.replicas });
      return store;
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  get streamName(): string {
    return this.opts.streamName;
  }

  get allSubjects(): string {
    return `${this.opts.subjectPrefix}.node.*`;
  }

  subjectFor(streamId: string): string {
    return `${this.opts.subjectPrefix}.node.${tokenSafe(streamId)}`;
  }

  streamIdOf(subject: string): string {
    return subject.slice(this.opts.subjectPrefix.length + '.node.'.length);
  }

  /**
   * Appends one decision as one message. `expectedVersion` is the stream's last position (0: empty);
   * `messageId` makes a redo of the same decision return the original position.
   */
  async append(streamId: string, events: EventEnvelope[], o: { expectedVersion: number; messageId: string }): Promise<AppendResult> {
    const subject = this.subjectFor(streamId);
    try {
      const ack = await this.js.publish(subject, encodeDecision(events), {
        msgID: o.messageId,
        expect: { lastSubjectSequence: o.expectedVersion, streamName: this.opts.streamName },
      });
      return { position: ack.seq, duplicate: ack.duplicate };
    } catch (e) {
      // No in-client retries: with them a saga worker stalled nodes across a nats-server kill -9
      // (saga-workers.test.ts). During an election the caller retries instead: the saga by redelivery,
      // an API client on 503 with its idempotency key.
      throw appendFailure(streamId, o.expectedVersion, e);
    }
  }

  /** The stream's version: the position of its last message, 0 when it has none. */
  async version(streamId: string): Promise<number> {
    const m = await this.jsm.direct.getMessage(this.opts.streamName, { last_by_subj: this.subjectFor(streamId) });
    return m?.seq ?? 0;
  }

  /** Reads one aggregate's decisions after position `after`, in order, validated. */
  async readStream(streamId: string, o: { after?: number; upTo?: number } = {}): Promise<StoredDecision[]> {
    const subject = this.subjectFor(streamId);
    const upTo = o.upTo ?? (await this.version(streamId));
    const out: StoredDecision[] = [];
    let next = (o.after ?? 0) + 1;
    while (next <= upTo) {
      // Direct get with next_by_subj walks just this subject, so an incremental read costs one round trip per new message.
      const m = await this.jsm.direct.getMessage(this.opts.streamName, { seq: next, next_by_subj: subject });
      if (!m || m.seq > upTo) break;
      out.push(decodeDecision(m.subject, m.seq, m.data));
      next = m.seq + 1;
    }
    return out;
  }

  /** One stored message by position, undecoded (it may be the one that does not decode); null when there is none. */
  async getMessage(seq: number): Promise<{ seq: number; subject: string; data: Uint8Array; storedAt: string; headers: Record<string, string[]> } | null> {
    const m = await this.jsm.direct.getMessage(this.opts.streamName, { seq });
    return m ? { seq: m.seq, subject: m.subject, data: m.data, storedAt: m.time.toISOString(), headers: Object.fromEntries([...(m.header ?? [])]) } : null;
  }

  async lastPosition(): Promise<number> {
    const info = await this.jsm.streams.info(this.opts.streamName);
    return info.state.last_seq;
  }

  private orderedConsumer(subject: string, from: number) {
    return this.js.consumers.get(this.opts.streamName, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, from) });
  }

  /**
   * Follows the log from `from` on and hands over batches of messages, undecoded, with their store
   * time, synchronously from the client's callback: no promise per message, which is what keeps a
   * replay close to a bare drain. A batch is handed over when full, or when the reader has caught up.
   * Undecoded, because the reader must outlive a message that does not decode (the projector marks
   * that one node broken).
   * `caughtUp` says the batch ends at the end of the log as the server saw it (nothing pending).
   * Resolves when `signal` aborts; rejects (and stops) when `onBatch` throws.
   */
  async followRaw(
    from: number,
    onBatch: (batch: RawStoredMessage[], caughtUp: boolean) => void,
    o: { batchSize: number; signal: AbortSignal },
  ): Promise<void> {
    const consumer = await this.orderedConsumer(this.allSubjects, from);
    let failure: unknown = null;
    let batch: RawStoredMessage[] = [];
    const messages = await consumer.consume({
      max_messages: READ_BATCH,
      expires: PULL_EXPIRES_MS,
      callback: (m) => {
        if (failure) return;
        try {
          const info = m.info;
          batch.push({ position: info.streamSequence, subject: m.subject, data: m.data, storedAtMs: Math.floor(info.timestampNanos / 1e6) });
          const caughtUp = info.pending === 0;
          if (batch.length >= o.batchSize || caughtUp) {
            const full = batch;
            batch = [];
            onBatch(full, caughtUp);
          }
        } catch (e) {
          failure = e;
          void messages.close();
        }
      },
    });
    await untilAborted(o.signal, () => void messages.close(), () => messages.closed());
    if (failure) throw failure;
  }

  /**
   * One node's decisions after position `after`: its history first, then each new one as it is
   * appended, on an ordered consumer filtered to the node's subject, until `signal` aborts or the
   * caller stops iterating. Throws EventDecodeError on a decision that does not decode.
   */
  async *followStream(streamId: string, after: number, o: { signal?: AbortSignal } = {}): AsyncGenerator<StoredDecision> {
    const messages = await (await this.orderedConsumer(this.subjectFor(streamId), after + 1)).consume({ max_messages: FOLLOW_BATCH });
    const stop = (): void => void messages.close();
    o.signal?.addEventListener('abort', stop);
    if (o.signal?.aborted) stop();
    try {
      for await (const m of messages) yield decodeDecision(m.subject, m.seq, m.data);
    } finally {
      o.signal?.removeEventListener('abort', stop);
      await messages.close();
    }
  }

  /** Creates or updates a durable pull consumer (on the event stream unless `spec.stream` names another) and asserts its config. */
  ensureDurableConsumer(spec: DurableConsumerSpec): Promise<void> {
    return ensureDurableConsumer(this.jsm, spec.stream ?? this.opts.streamName, { replicas: this.opts.replicas, ...spec });
  }

  /** Pulls from a durable consumer; at most `maxMessages` are unacked in this process at a time. */
  async consume(name: string, o: { stream?: string; maxMessages: number }): Promise<Deliveries> {
    const consumer = await this.js.consumers.get(o.stream ?? this.opts.streamName, name);
    return consumer.consume({ max_messages: o.maxMessages, expires: PULL_EXPIRES_MS });
  }

  /** A durable consumer of the event stream: how far it has been delivered and acked; null when it does not exist. */
  durableConsumerState(name: string): Promise<DurableConsumerState | null> {
    return durableConsumerState(this.jsm, this.opts.streamName, name);
  }

  /**
   * Captures the MAX_DELIVERIES advisories of every consumer of the event stream into a small
   * stream of their own, and says where one consumer's advisories are.
   */
  async captureMaxDeliveries(consumer: string): Promise<{ stream: string; subject: string }> {
    const prefix = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.opts.streamName}`;
    const stream = `${this.opts.streamName}_MAX_DELIVERIES`;
    await ensureCaptureStream(this.jsm, stream, `${prefix}.*`, ADVISORY_MAX_AGE_MS, this.opts.replicas ?? 1);
    return { stream, subject: `${prefix}.${consumer}` };
  }

  /** Ansible task progress is ephemeral: core NATS, not the log. */
  publishProgress(jobId: string, progress: unknown): void {
    this.nc.publish(this.progressSubject(jobId), JSON.stringify(progress));
  }

  /** Calls `onProgress` with each progress message of the job that is JSON (garbage is dropped); returns the unsubscribe. */
  subscribeProgress(jobId: string, onProgress: (raw: unknown) => void): () => void {
    return subscribeJson(this.nc, this.progressSubject(jobId), onProgress);
  }

  private progressSubject(jobId: string): string {
    return `${this.opts.subjectPrefix}.progress.${tokenSafe(jobId)}`;
  }

  /** True once the connection is closed for good (not while it reconnects). */
  get connectionClosed(): boolean {
    return this.nc.isClosed();
  }

  /** A round trip to the server, bounded by `timeoutMs`. */
  ping(timeoutMs = 2000): Promise<PingResult> {
    return pingNats(this.nc, timeoutMs);
  }

  /** Drains the connection the store owns. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    // drain() rejects on a dead connection, and the client would then keep reconnecting and hold the process open.
    await this.nc.drain().catch(() => this.nc.close());
  }
}

const tokenSafe = (id: string): string => {
  if (!TOKEN_SAFE_ID.test(id)) throw new AppError('INVALID_ID', `id ${JSON.stringify(id)} is not token-safe`, false);
  return id;
};

const untilAborted = async (signal: AbortSignal, stop: () => void, closed: () => Promise<unknown>): Promise<void> => {
  signal.addEventListener('abort', stop);
  if (signal.aborted) stop();
  try {
    await closed();
  } finally {
    signal.removeEventListener('abort', stop);
  }
};
