import { AppError } from '../errors/app-error.ts';
import { decisionMessageSchema, type EventEnvelope } from './envelope.ts';

/** A stored decision: the JetStream sequence (its position) and the events it carried. */
export interface StoredDecision {
  position: number;
  subject: string;
  events: EventEnvelope[];
}

/**
 * An unreadable event is never skipped silently: a skipped event would corrupt every state folded
 * after it. Readers of one node stop (the API answers `node_unreadable`); the projector marks that
 * node broken and keeps projecting the others (ADR 0012).
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
