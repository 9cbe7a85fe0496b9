import type { FastifyReply } from 'fastify';
import type { Projector } from '../projections/projector.ts';

export const STALE_HEADER = 'x-pressluft-stale';
export const CHECKPOINT_HEADER = 'x-pressluft-checkpoint';

/**
 * Read-your-writes: waits, up to a bound, until the read model has projected `minPosition`.
 * If the bound passes we still answer from the read model as it is, flagged with
 * `X-Pressluft-Stale: true` (ADR 0040, docs/adr/0040-read-your-writes-answers-stale-after-a-bound.md):
 * a query never hangs or fails because the projector is slow. Every answer says how far the read model is.
 */
export const awaitPosition = async (projector: Projector, reply: FastifyReply, minPosition: number | undefined, waitMs: number): Promise<void> => {
  const caughtUp = minPosition === undefined || (await projector.waitFor(minPosition, waitMs));
  if (!caughtUp) void reply.header(STALE_HEADER, 'true');
  void reply.header(CHECKPOINT_HEADER, String(projector.checkpoint));
};
