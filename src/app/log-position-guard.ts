import { AppError } from '../errors/app-error.ts';

/** What the start-up check compares: the log's end against everything that remembers a position in it. */
export interface LogPositions {
  /** The event stream's last sequence (0: empty). */
  lastPosition: number;
  /** The read model's checkpoint: the last position it applied. */
  readModelCheckpoint: number;
  /** Durable consumers of the event stream; null when the consumer does not exist yet. */
  consumers: Array<{ name: string; state: { deliveredStreamSeq: number; ackFloorStreamSeq: number } | null }>;
}

export class EventLogBehindReadModel extends AppError {
  constructor(message: string, details: Record<string, unknown>) {
    super('EVENT_LOG_BEHIND_READ_MODEL', message, false, details);
  }
}

/**
 * Refuses to serve from a log that moved backwards. A read model or a consumer ahead of the
 * log means acknowledged messages were lost or the stream was replaced (two servers on one
 * store, a restored backup, a deleted stream). Serving on would answer new commands at
 * positions the read model already holds for older data, and the saga would skip them.
 * An empty stream under a non-empty read model is the same case.
 */
export const checkLogPositions = (p: LogPositions): void => {
  const ahead: string[] = [];
  if (p.readModelCheckpoint > p.lastPosition) ahead.push(`the read model's checkpoint is ${p.readModelCheckpoint}`);
  for (const c of p.consumers) {
    if (c.state && c.state.deliveredStreamSeq > p.lastPosition) ahead.push(`consumer ${c.name} was delivered up to ${c.state.deliveredStreamSeq}`);
  }
  if (ahead.length === 0) return;
  throw new EventLogBehindReadModel(
    `the event log ends at position ${p.lastPosition}, but ${ahead.join(' and ')}: the log moved backwards. ` +
      'Refusing to serve. Recover the log, or rebuild the read model and reset the consumer: see docs/operations.md "Event log behind the read model"',
    {
      lastPosition: p.lastPosition,
      readModelCheckpoint: p.readModelCheckpoint,
      consumers: Object.fromEntries(p.consumers.map((c) => [c.name, c.state])),
    },
  );
};

/** The ports the check reads; the event store and the projector satisfy them. */
export interface LogPositionSources {
  store: { lastPosition(): Promise<number>; durableConsumerState(name: string): Promise<{ deliveredStreamSeq: number; ackFloorStreamSeq: number } | null> };
  readModelCheckpoint: number;
  consumerNames: readonly string[];
}

export const assertLogNotBehind = async (s: LogPositionSources): Promise<LogPositions> => {
  const positions: LogPositions = {
    lastPosition: await s.store.lastPosition(),
    readModelCheckpoint: s.readModelCheckpoint,
    consumers: await Promise.all(s.consumerNames.map(async (name) => ({ name, state: await s.store.durableConsumerState(name) }))),
  };
  checkLogPositions(positions);
  return positions;
};
