import { DiscardPolicy, JetStreamApiCodes, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { isApiError } from './durable-consumers.ts';
import { EventStoreConfigError, StreamConfigMismatch } from './event-store-errors.ts';

const NANOS_PER_MS = 1_000_000;

export interface EventStreamSpec {
  streamName: string;
  /** `<prefix>.node.*` */
  subjects: string;
  duplicateWindowMs: number;
  /** 1 (one server) or 3 (a cluster); default 1. */
  replicas?: number;
}

const desiredConfig = (s: EventStreamSpec): Partial<StreamConfig> & { name: string } => ({
  name: s.streamName,
  subjects: [s.subjects],
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
  max_msgs: -1,
  max_bytes: -1,
  max_age: 0,
  num_replicas: s.replicas ?? 1,
  duplicate_window: s.duplicateWindowMs * NANOS_PER_MS,
  // The log is the source of truth: nothing may delete or purge events.
  deny_delete: true,
  deny_purge: true,
  allow_direct: true,
});

/** Where the effective config differs from what we want; empty when it is in force. */
export const streamConfigProblems = (config: Partial<StreamConfig>, want: Partial<StreamConfig> & { subjects: string[] }): string[] => {
  const problems: string[] = [];
  if (config.storage !== StorageType.File) problems.push(`storage is ${config.storage}`);
  if (config.retention !== want.retention) problems.push(`retention is ${config.retention}`);
  if (config.discard !== want.discard) problems.push(`discard is ${config.discard}`);
  // A limit is how a server discards events: any other value than "none" loses the log's past.
  for (const k of ['max_msgs', 'max_bytes'] as const) if (config[k] !== -1) problems.push(`${k} is ${config[k]}`);
  if ((config.max_age ?? 0) !== 0) problems.push(`max_age is ${config.max_age}`);
  if (config.num_replicas !== want.num_replicas) problems.push(`num_replicas is ${config.num_replicas}, want ${want.num_replicas}`);
  if (!config.deny_delete) problems.push('deny_delete is off');
  if (!config.deny_purge) problems.push('deny_purge is off');
  if (!config.allow_direct) problems.push('allow_direct is off');
  if (config.duplicate_window !== want.duplicate_window) problems.push(`duplicate_window is ${config.duplicate_window}ns`);
  if (!config.subjects?.includes(want.subjects[0]!)) problems.push(`subjects are ${config.subjects?.join(',')}`);
  return problems;
};

/**
 * Creates the event stream, or updates it only when its effective config differs (the app user
 * of the embedded server has no update right: docs/security.md), then asserts what is in force.
 */
export const ensureEventStream = async (jsm: JetStreamManager, s: EventStreamSpec): Promise<void> => {
  const want = desiredConfig(s) as Partial<StreamConfig> & { name: string; subjects: string[] };
  let current: Partial<StreamConfig> | null = null;
  try {
    current = (await jsm.streams.info(s.streamName)).config;
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.StreamNotFound)) throw e;
    await jsm.streams.add(want);
  }
  if (current && streamConfigProblems(current, want).length > 0) {
    try {
      await jsm.streams.update(s.streamName, want);
    } catch (e) {
      throw new StreamConfigMismatch(s.streamName, streamConfigProblems(current, want), e);
    }
  }
  // nats-server silently drops config fields it does not know, so read back what is in force.
  const { config } = await jsm.streams.info(s.streamName);
  const problems = streamConfigProblems(config, want);
  if (problems.length > 0) throw new StreamConfigMismatch(s.streamName, problems, null);
};

/**
 * A small file stream that captures advisories (plain NATS messages, lost when nobody listens),
 * so that a durable consumer can read them later. Created once with the event stream's replicas;
 * never updated, but its replicas are asserted.
 */
export const ensureCaptureStream = async (jsm: JetStreamManager, name: string, subject: string, maxAgeMs: number, replicas = 1): Promise<void> => {
  try {
    await jsm.streams.info(name);
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.StreamNotFound)) throw e;
    await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, max_age: maxAgeMs * NANOS_PER_MS, num_replicas: replicas });
  }
  const { config } = await jsm.streams.info(name);
  if (config.num_replicas !== replicas) throw new EventStoreConfigError(`stream ${name} has ${config.num_replicas} replicas, want ${replicas}: update it as the operator (docs/operations.md, "Replicas")`);
};
