import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { faultSchema, type FaultInput } from './faults.ts';
import type { RateLimitConfig, RateLimiter } from './rate-limiter.ts';
import type { SimulatorSnapshot, SimulatorState } from './simulator-state.ts';

/** Test and demo controls; the same operations back the programmatic handle and /__admin/*. */
export interface SimulatorAdmin {
  /** Queue a fault for the next `count` calls of an operation. */
  injectFault(fault: FaultInput): void;
  /** How long new actions run; null = they never finish. 0 = done at once (server running at once). */
  setActionDuration(ms: number | null): void;
  /** The next `count` actions created end in `error` with Hetzner's code (e.g. create_server's). */
  failNextActions(count: number, code?: string, message?: string): void;
  /** Every running action finishes now: a test holds a create with setActionDuration(null), then lets it go. Returns how many. */
  finishActions(): number;
  /**
   * Servers, SSH keys and counters, as Hetzner would render them now; each server also carries the
   * user_data it was created with (a private host key: the admin API is loopback and test only).
   */
  snapshot(): SimulatorSnapshot;
  /** A new rate-limit bucket, full (e.g. 20 requests refilling 1 per second). */
  setRateLimit(config: RateLimitConfig): void;
  /** Fault: refuse every n-th API request with 429 (n ≥ 2), whatever the bucket holds; null turns it off. */
  refuseEveryNth(n: number | null): void;
  /** Forget every resource, fault and counter; the bucket is the start-up one again. */
  reset(): void;
}

export const rateLimitConfigSchema = z.object({ limit: z.number().int().min(1), refillPerSecond: z.number().positive() });
export const refuseEveryNthSchema = z.number().int().min(2).nullable();

export const createSimulatorAdmin = (state: SimulatorState, limiter: RateLimiter, now: () => number): SimulatorAdmin => {
  const startBucket = limiter.config;
  return {
    injectFault: (fault) => state.faults.add(fault),
    setActionDuration: (ms) => {
      state.actionDurationMs = ms;
    },
    failNextActions: (count, code = 'unknown_error', message = 'action failed (injected by the simulator)') =>
      state.failNextActions(count, code, message),
    finishActions: () => state.finishActions(),
    snapshot: () => state.snapshot(),
    setRateLimit: (config) => limiter.configure(rateLimitConfigSchema.parse(config), now()),
    refuseEveryNth: (n) => limiter.refuseEveryNth(refuseEveryNthSchema.parse(n)),
    reset: () => {
      state.reset();
      limiter.refuseEveryNth(null);
      limiter.configure(startBucket, now());
    },
  };
};

const rateLimitBody = z.object({ bucket: rateLimitConfigSchema.optional(), refuseEveryNth: refuseEveryNthSchema.optional() });

const actionsBody = z.object({
  durationMs: z.number().int().min(0).nullable().optional(),
  failNext: z.object({ count: z.number().int().min(1), code: z.string().min(1).optional(), message: z.string().optional() }).optional(),
});

/**
 * /__admin/* needs no Hetzner token: the simulator only ever listens on loopback,
 * and tests must be able to inspect it even while they test bad tokens.
 */
export const registerAdminRoutes = (app: FastifyInstance, admin: SimulatorAdmin): void => {
  const badRequest = (issues: z.core.$ZodIssue[]) => ({ error: { code: 'invalid_input', message: 'invalid admin request', details: { issues } } });

  app.get('/__admin/state', async () => admin.snapshot());
  app.post('/__admin/faults', async (req, reply) => {
    const r = faultSchema.safeParse(req.body);
    if (!r.success) return reply.code(400).send(badRequest(r.error.issues));
    admin.injectFault(r.data);
    return reply.code(204).send();
  });
  app.post('/__admin/actions', async (req, reply) => {
    const r = actionsBody.safeParse(req.body);
    if (!r.success) return reply.code(400).send(badRequest(r.error.issues));
    if (r.data.durationMs !== undefined) admin.setActionDuration(r.data.durationMs);
    if (r.data.failNext) admin.failNextActions(r.data.failNext.count, r.data.failNext.code, r.data.failNext.message);
    return reply.code(204).send();
  });
  app.post('/__admin/actions/finish', async () => ({ finished: admin.finishActions() }));
  app.post('/__admin/rate-limit', async (req, reply) => {
    const r = rateLimitBody.safeParse(req.body);
    if (!r.success) return reply.code(400).send(badRequest(r.error.issues));
    if (r.data.bucket) admin.setRateLimit(r.data.bucket);
    if (r.data.refuseEveryNth !== undefined) admin.refuseEveryNth(r.data.refuseEveryNth);
    return reply.code(204).send();
  });
  app.post('/__admin/reset', async (_req, reply) => {
    admin.reset();
    return reply.code(204).send();
  });
};
