import type { EventEnvelope } from '../events/envelope.ts';
import { redactStoredText } from '../projections/stored-text-redaction.ts';
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

/** How much of an undecodable message an operator sees; the rest is counted, not shown. */
export const RAW_TEXT_LIMIT = 4096;

/** The text of a message that does not decode, for an operator: redacted, then cut to RAW_TEXT_LIMIT characters. */
export const redactedRawText = (data: Uint8Array): { text: string; bytes: number; truncated: boolean } => {
  const full = redactStoredText(new TextDecoder().decode(data));
  return { text: full.slice(0, RAW_TEXT_LIMIT), bytes: data.length, truncated: full.length > RAW_TEXT_LIMIT };
};
