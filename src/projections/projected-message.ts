import { decodeDecision, EventDecodeError, type StoredDecision } from '../events/event-codec.ts';
import type { RawStoredMessage } from '../eventstore/event-store.ts';
import { redactStoredText } from './stored-text-redaction.ts';

/** A stored message that does not decode: the projector marks its node broken instead of stopping. */
export interface UndecodableMessage {
  position: number;
  subject: string;
  /** The EVENT_INVALID message: subject, position and the first schema issue. */
  reason: string;
  storedAt: string;
}

export type ProjectedMessage = StoredDecision | UndecodableMessage;

export const isUndecodable = (m: ProjectedMessage): m is UndecodableMessage => 'reason' in m;

/** Reasons come from our codec, but a forged payload shapes them (key names, paths): redacted and kept short. */
const MAX_REASON = 500;

/** Decodes one raw message; only a decode error becomes an UndecodableMessage, anything else is thrown. */
export const decodeForProjection = (m: RawStoredMessage): ProjectedMessage => {
  try {
    return decodeDecision(m.subject, m.position, m.data);
  } catch (e) {
    if (!(e instanceof EventDecodeError)) throw e;
    return { position: m.position, subject: m.subject, reason: redactStoredText(e.message).slice(0, MAX_REASON), storedAt: new Date(m.storedAtMs).toISOString() };
  }
};
