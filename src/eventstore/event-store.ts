import { createHash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../logging/logger.ts';
import { TOKEN_SAFE_ID } from '../events/ids.ts';
import { decodeDecision, encodeDecision, type StoredDecision } from '../events/event-codec.ts';
import type { EventEnvelope } from '../events/envelope.ts';

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

export interface EventStoreOptions {
  streamName: string;
  /** Subjects are `<prefix>.node.<nodeId>`: one subject per aggregate, because the expected-sequence check looks at the exact subject only. */
  subjectPrefix: string;
  duplicateWindowMs: number;
  replicas?: number;
  logger: Logger;
}

export interface AppendResult {
  position: number;
  duplicate: boolean;
}

const JS_WRONG_LAST_SEQUENCE = 10071;
/** How many messages an ordered reader asks for at a time. */
export const READ_BATCH = 4096;
const NANOS_PER_MS = 1_000_000;

/**
 * A deterministic event id: re-publishing the same decision (same message id) yields the same
 * event ids, so consumers that dedupe by event id agree with JetStream's msgID dedupe.
 */
export const eventIdFor = (messageId: string, index: number): string => {
  const h = createHash('sha256').update(`${messageId}#${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/** Compares dotted versions numerically: "2.9.10" < "2.10.0". */
export const versionBelow = (version: string, min: string): boolean => {
  const a = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
};

export class EventStore {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly opts: EventStoreOptions,
    private readonly ownsConnection: boolean,
  ) {}

  /** Connects (or takes a connection), checks the server version and ensures the stream with an asserted config. */
  static async open(target: string | NatsConnection, opts: EventStoreOptions): Promise<EventStore> {
    const owns = typeof target === 'string';
    const nc = typeof target === 'string' ? await connect({ servers: target, name: 'pressluft', maxReconnectAttempts: -1, reconnectTimeWait: 250 }) : target;
    const version = nc.info?.version ?? '0.0.0';
    if (versionBelow(version, '2.10.0')) {
      // nats-server #4320: R3 expected-sequence checks were not serializable before 2.9.21; 2.10 is our floor for clusters.
      opts.logger.warn({ serverVersion: version }, 'nats-server is older than 2.10: fine for a single node, but clustered (R3) deployments need nats-server >= 2.10');
    }
    const jsm = await jetstreamManager(nc);
    const store = new EventStore(nc, jetstream(nc), jsm, opts, owns);
    await store.ensureStream();
    return store;
  }

  get streamName(): string {
    return this.opts.streamName;
  }

  get allSubjects(): string {
    return `${this.opts.subjectPrefix}.node.*`;
  }

  subjectFor(streamId: string): string {
    if (!TOKEN_SAFE_ID.test(streamId)) throw new AppError('INVALID_ID', `stream id ${JSON.stringify(streamId)} is not token-safe`, false);
    return `${this.opts.subjectPrefix}.node.${streamId}`;
  }

  streamIdOf(subject: string): string {
    return subject.slice(this.opts.subjectPrefix.length + '.node.'.length);
  }

  private desiredConfig(): Partial<StreamConfig> & { name: string } {
    return {
      name: this.opts.streamName,
      subjects: [this.allSubjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs: -1,
      max_bytes: -1,
      max_age: 0,
      num_replicas: this.opts.replicas ?? 1,
      duplicate_window: this.opts.duplicateWindowMs * NANOS_PER_MS,
      // The log is the source of truth: nothing may delete or purge events.
      deny_delete: true,
      deny_purge: true,
      allow_direct: true,
    };
  }

  private async ensureStream(): Promise<void> {
    const want = this.desiredConfig();
    try {
      await this.jsm.streams.info(this.opts.streamName);
      await this.jsm.streams.update(this.opts.streamName, want);
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== 10059) throw e;
      await this.jsm.streams.add(want);
    }
    // 2.9.10 silently drops config fields it does not know, so read back what is in force.
    const { config } = await this.jsm.streams.info(this.opts.streamName);
    const problems: string[] = [];
    if (config.storage !== StorageType.File) problems.push(`storage is ${config.storage}`);
    if (!config.deny_delete) problems.push('deny_delete is off');
    if (!config.deny_purge) problems.push('deny_purge is off');
    if (!config.allow_direct) problems.push('allow_direct is off');
    if (config.duplicate_window !== want.duplicate_window) problems.push(`duplicate_window is ${config.duplicate_window}ns`);
    if (!config.subjects?.includes(this.allSubjects)) problems.push(`subjects are ${config.subjects?.join(',')}`);
    if (problems.length > 0) throw new EventStoreConfigError(`stream ${this.opts.streamName} config not in force: ${problems.join('; ')}`);
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
      if (e instanceof JetStreamApiError && e.code === JS_WRONG_LAST_SEQUENCE) {
        const m = /wrong last sequence: (\d+)/.exec(e.message);
        throw new WrongExpectedVersion(streamId, o.expectedVersion, m?.[1] ? Number(m[1]) : null);
      }
      throw e;
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

  async lastPosition(): Promise<number> {
    const info = await this.jsm.streams.info(this.opts.streamName);
    return info.state.last_seq;
  }

  /**
   * Every decision from `from` up to `upTo` (default: the position that was last when it started),
   * through an ordered consumer (no acks, server-side flow). For bounded reads such as a rebuild's
   * catch-up; `follow` tails the log.
   */
  async *readAll(from: number, o: { upTo?: number } = {}): AsyncGenerator<StoredDecision> {
    const stopAt = o.upTo ?? (await this.lastPosition());
    if (from > stopAt) return;
    const messages = await (await this.orderedConsumer(from)).consume({ max_messages: READ_BATCH });
    try {
      for await (const m of messages) {
        yield decodeDecision(m.subject, m.seq, m.data);
        if (m.seq >= stopAt) break;
      }
    } finally {
      await messages.close();
    }
  }

  private orderedConsumer(from: number) {
    return this.js.consumers.get(this.opts.streamName, {
      filter_subjects: this.allSubjects,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, from),
    });
  }

  /**
   * Follows the log from `from` on and hands over batches of decoded decisions, synchronously from
   * the client's callback: no promise per message, which is what keeps a replay close to a bare drain.
   * A batch is handed over when full, or when the reader has caught up. Resolves when `signal` aborts;
   * rejects (and stops) when a decision does not decode or `onBatch` throws.
   */
  async follow(from: number, onBatch: (batch: StoredDecision[]) => void, o: { batchSize: number; signal: AbortSignal }): Promise<void> {
    const consumer = await this.orderedConsumer(from);
    let failure: unknown = null;
    let batch: StoredDecision[] = [];
    const messages = await consumer.consume({
      max_messages: READ_BATCH,
      callback: (m) => {
        if (failure) return;
        try {
          batch.push(decodeDecision(m.subject, m.seq, m.data));
          if (batch.length >= o.batchSize || m.info.pending === 0) {
            const full = batch;
            batch = [];
            onBatch(full);
          }
        } catch (e) {
          failure = e;
          void messages.close();
        }
      },
    });
    const onAbort = (): void => void messages.close();
    o.signal.addEventListener('abort', onAbort);
    if (o.signal.aborted) onAbort();
    try {
      await messages.closed();
    } finally {
      o.signal.removeEventListener('abort', onAbort);
    }
    if (failure) throw failure;
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.nc.drain();
  }
}
