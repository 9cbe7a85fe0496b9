import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { EventStoreConfigError } from './event-store-errors.ts';

const NANOS_PER_MS = 1_000_000;

/** A durable pull consumer with explicit acks, as the saga and the max-deliveries watch use one. */
export interface DurableConsumerSpec {
  /** The durable name. */
  name: string;
  /** The stream it reads; the event stream when omitted. */
  stream?: string;
  filterSubject: string;
  ackWaitMs: number;
  /** Unlimited when omitted. */
  maxDeliver?: number;
  maxAckPending?: number;
  /** The consumer's replicas: the event stream's (1 or 3); default 1. */
  replicas?: number;
}

/** One delivered message as the consumer protocol sees it (a JetStream message satisfies it). */
export interface Delivery {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly info: { readonly deliveryCount: number };
  ack(): void;
  nak(delayMs?: number): void;
  /** Extends the ack wait: the message stays ours while a step runs. */
  working(): void;
  term(): void;
}

/** What a consumer's progress is: the highest position delivered and the ack floor. */
export interface DurableConsumerState {
  deliveredStreamSeq: number;
  ackFloorStreamSeq: number;
}

export const isApiError = (e: unknown, code: number): boolean => e instanceof JetStreamApiError && e.code === code;

/**
 * Creates the consumer, or updates the settings we own on an existing one, then reads back
 * what is in force. Never a backoff array: it would distort nak(delay).
 */
export const ensureDurableConsumer = async (jsm: JetStreamManager, stream: string, spec: DurableConsumerSpec): Promise<void> => {
  const ackWait = spec.ackWaitMs * NANOS_PER_MS;
  const replicas = spec.replicas ?? 1;
  const owned = { ack_wait: ackWait, num_replicas: replicas, ...(spec.maxDeliver === undefined ? {} : { max_deliver: spec.maxDeliver }), ...(spec.maxAckPending === undefined ? {} : { max_ack_pending: spec.maxAckPending }) };
  try {
    await jsm.consumers.info(stream, spec.name);
    await jsm.consumers.update(stream, spec.name, owned);
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.ConsumerNotFound)) throw e;
    await jsm.consumers.add(stream, { durable_name: spec.name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: spec.filterSubject, ...owned });
  }
  const { config } = await jsm.consumers.info(stream, spec.name);
  if (config.backoff?.length) throw new EventStoreConfigError(`consumer ${spec.name} has a backoff array; it must not (nak delays would be wrong)`);
  if ((spec.maxDeliver !== undefined && config.max_deliver !== spec.maxDeliver) || config.ack_wait !== ackWait || config.num_replicas !== replicas) {
    throw new EventStoreConfigError(`consumer ${spec.name} config not in force: max_deliver ${config.max_deliver}, ack_wait ${config.ack_wait}, num_replicas ${config.num_replicas} (want ${replicas})`);
  }
};

/** The consumer's delivered and ack-floor positions, or null when it does not exist (yet). */
export const durableConsumerState = async (jsm: JetStreamManager, stream: string, name: string): Promise<DurableConsumerState | null> => {
  try {
    const info = await jsm.consumers.info(stream, name);
    return { deliveredStreamSeq: info.delivered.stream_seq, ackFloorStreamSeq: info.ack_floor.stream_seq };
  } catch (e) {
    if (isApiError(e, JetStreamApiCodes.ConsumerNotFound)) return null;
    throw e;
  }
};
