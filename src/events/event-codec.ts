import { AppError } from '../errors/app-error.ts';
import { decisionMessageSchema, type EventEnvelope } from './envelope.ts';

/** A stored decision: the JetStream sequence (its position) and the events it carried. */
export interface StoredDecision {
  position: number;
  subject: string;
  events: EventEnvelope[];
}

/**
 * An unreadable event must stop the reader, never be skipped: a skipped event would silently
 * corrupt every state folded after it.
 */
export class EventDecodeError extends AppError {
  constructor(subject: string, position: number, reason: string) {
    super('EVENT_INVALID', `invalid event in ${subject} at position ${position}: ${reason}`, false, { subject, position });
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export const encodeDecision = (events: readonly EventEnvelope[]): Uint8Array =>
  encoder.encode(JSON.stringify({ events }));

export const decodeDecision = (subject: string, position: number, data: Uint8Array): StoredDecision => {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch {
    throw new EventDecodeError(subject, position, 'not JSON');
  }
  const parsed = decisionMessageSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EventDecodeError(subject, position, `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'schema mismatch'}`);
  }
  return { position, subject, events: parsed.data.events as EventEnvelope[] };
};
