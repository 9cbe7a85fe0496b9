import { z } from 'zod';
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
