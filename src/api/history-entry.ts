import type { EventEnvelope } from '../events/envelope.ts';
import type { HistoryEntry } from './api-schemas.ts';

/** One event as auditors see it: where it sits in the log, when, what, who and why. */
export const toHistoryEntry = (e: EventEnvelope & { position: number }): HistoryEntry => ({
  position: e.position,
  eventId: e.eventId,
  occurredAt: e.occurredAt,
  type: e.type,
  version: e.version,
  data: e.data,
  actor: e.actor,
  correlationId: e.correlationId,
  causationId: e.causationId,
});
