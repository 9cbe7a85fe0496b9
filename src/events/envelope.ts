import { z } from 'zod';
import { eventIdFor } from './event-id.ts';
import { nodeEventSchemas, type NodeEvent } from './node-events.ts';

/** Who caused an event: an API caller (by token name), the system, or the saga. */
export const actorSchema = z.string().regex(/^(api:[A-Za-z0-9_.-]{1,64}|system|saga)$/);

export const envelopeMetaSchema = z.object({
  eventId: z.string().min(1),
  streamId: z.string().min(1),
  occurredAt: z.string().datetime({ offset: true }),
  actor: actorSchema,
  /** The job the event belongs to. */
  correlationId: z.string().min(1),
  /** The event position or command id that triggered this event. */
  causationId: z.string().min(1),
});
export type EnvelopeMeta = z.infer<typeof envelopeMetaSchema>;

// One flat object per event type under a discriminated union: zod picks the branch by `type`
// and parses once, several times faster than an intersection (the replay path decodes every event).
const [first, ...rest] = nodeEventSchemas.map((e) => envelopeMetaSchema.extend(e.shape));
export const envelopeSchema = z.discriminatedUnion('type', [first!, ...rest]);
export type EventEnvelope = EnvelopeMeta & NodeEvent;

/**
 * One decision is one JetStream message (2.9.10 has no atomic batch publish),
 * so a message carries every event the decision produced.
 */
export const decisionMessageSchema = z.object({ events: z.array(envelopeSchema).min(1) });

/** Who and what a decision's events are stamped with; the command handler fills it in. */
export interface EnvelopeContext {
  actor: string;
  /** The event position or command id that caused this decision. */
  causationId: string;
  /** ISO time; nothing here reads the clock. */
  now: string;
  /** Deterministic per decision: a redo gets the same message id and so the same event ids. */
  messageId: string;
}

/** Wraps a decision's events in envelopes; the job an event belongs to is its correlation id. */
export const toEnvelopes = (nodeId: string, events: readonly NodeEvent[], ctx: EnvelopeContext): EventEnvelope[] =>
  events.map((e, i) => ({
    ...e,
    eventId: eventIdFor(ctx.messageId, i),
    streamId: nodeId,
    occurredAt: ctx.now,
    actor: ctx.actor,
    correlationId: e.data.jobId,
    causationId: ctx.causationId,
  }));
