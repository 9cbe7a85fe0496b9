import { DiscardPolicy, JetStreamApiCodes, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { isApiError } from './durable-consumers.ts';
import { EventStoreConfigError } from './event-store-errors.ts';

const NANOS_PER_MS = 1_000_000;

export interface EventStreamSpec {
  streamName: string;
  /** `<prefix>.node.*` */
  subjects: string;
  duplicateWindowMs: number;
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

/** Creates or updates the event stream, then asserts the config that is really in force. */
export const ensureEventStream = async (jsm: JetStreamManager, s: EventStreamSpec): Promise<void> => {
  const want = desiredConfig(s);
  try {
    await jsm.streams.info(s.streamName);
    await jsm.streams.update(s.streamName, want);
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.StreamNotFound)) throw e;
    await jsm.streams.add(want);
  }
  // 2.9.10 silently drops config fields it does not know, so read back what is in force.
  const { config } = await jsm.streams.info(s.streamName);
  const problems: string[] = [];
  if (config.storage !== StorageType.File) problems.push(`storage is ${config.storage}`);
  if (!config.deny_delete) problems.push('deny_delete is off');
  if (!config.deny_purge) problems.push('deny_purge is off');
  if (!config.allow_direct) problems.push('allow_direct is off');
  if (config.duplicate_window !== want.duplicate_window) problems.push(`duplicate_window is ${config.duplicate_window}ns`);
  if (!config.subjects?.includes(s.subjects)) problems.push(`subjects are ${config.subjects?.join(',')}`);
  if (problems.length > 0) throw new EventStoreConfigError(`stream ${s.streamName} config not in force: ${problems.join('; ')}`);
};

/**
 * A small file stream that captures advisories (plain NATS messages, lost when nobody listens),
 * so that a durable consumer can read them later. Created once; never updated.
 */
export const ensureCaptureStream = async (jsm: JetStreamManager, name: string, subject: string, maxAgeMs: number): Promise<void> => {
  try {
    await jsm.streams.info(name);
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.StreamNotFound)) throw e;
    await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, max_age: maxAgeMs * NANOS_PER_MS });
  }
};
