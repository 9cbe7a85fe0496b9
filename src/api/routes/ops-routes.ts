import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { ApiError } from '../api-error.ts';
import { errorBody, healthBody, readyBody } from '../api-schemas.ts';

const tags = ['ops'];
const NATS_PING_TIMEOUT_MS = 2000;

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });

/** Public routes: liveness, readiness and Prometheus metrics. They reveal no node data. */
export const opsRoutes =
  (deps: ApiDeps, o: { maxReadyLag: number }): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/healthz', { schema: { tags, summary: 'Liveness: the process answers', response: { 200: healthBody } } }, async () => ({ status: 'ok' }));

    app.get(
      '/readyz',
      { schema: { tags, summary: 'Readiness: NATS answers and the projector is running and caught up', response: { 200: readyBody, 503: errorBody } } },
      async () => {
        const notReady = (message: string, details?: Record<string, unknown>): ApiError => new ApiError(503, 'not_ready', message, details);
        if (deps.store.nc.isClosed()) throw notReady('the NATS connection is closed');
        try {
          await withTimeout(deps.store.nc.flush(), NATS_PING_TIMEOUT_MS, 'NATS ping');
        } catch {
          throw notReady('NATS does not answer');
        }
        if (deps.projector.error) throw notReady('the projector has stopped', { code: 'projector_stopped' });
        const lag = await deps.projector.lag();
        if (lag > o.maxReadyLag) throw notReady(`the projector lags ${lag} positions behind the log`, { lag, maxLag: o.maxReadyLag });
        return { status: 'ready' as const, checks: { nats: 'ok' as const, projector: { checkpoint: deps.projector.checkpoint, lag } } };
      },
    );

    app.get(
      '/metrics',
      { schema: { tags, summary: 'Prometheus text exposition', response: { 200: z.string() } } },
      async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await deps.metrics.render()),
    );
  };
