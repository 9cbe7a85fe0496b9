import { createHash } from 'node:crypto';

/**
 * A deterministic event id: re-publishing the same decision (same message id) yields the same
 * event ids, so consumers that dedupe by event id agree with JetStream's msgID dedupe.
 */
export const eventIdFor = (messageId: string, index: number): string => {
  const h = createHash('sha256').update(`${messageId}#${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};
