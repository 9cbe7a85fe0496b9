import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { ApiError } from '../api-error.ts';
import { errorBody, healthBody, readyBody, versionBody } from '../api-schemas.ts';
import { errorResponses } from './error-responses.ts';

const tags = ['ops'];
const NATS_PING_TIMEOUT_MS = 2000;

/** The core loops that are dead: the process answers, but it no longer does its work. */
const deadParts = (deps: ApiDeps): Array<{ part: 'nats' | 'projector' | 'saga'; reason: string }> => [
  ...(deps.store.connectionClosed ? [{ part: 'nats' as const, reason: 'the NATS connection is closed' }] : []),
  ...(deps.projector.error ? [{ part: 'projector' as const, reason: `the projector has stopped: ${deps.projector.error.message}` }] : []),
  ...(deps.saga && !deps.saga.alive ? [{ part: 'saga' as const, reason: 'the saga consumer loop has stopped' }] : []),
];

/** Liveness, readiness and Prometheus metrics (public: they reveal no node data), and the version (behind the token). */
export const opsRoutes =
  (deps: ApiDeps, o: { maxReadyLag: number }): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/healthz',
      { schema: { tags, summary: 'Liveness: the process answers and its core loops (NATS connection, projector, saga) run', response: { 200: healthBody, 503: errorBody } } },
      async (_req, reply) => {
        const dead = deadParts(deps);
        if (dead.length === 0) return { status: 'ok' };
        return reply.code(503).send({ error: { code: 'not_alive', message: dead.map((d) => d.reason).join('; '), details: { parts: dead.map((d) => d.part) } } });
      },
    );

    app.get(
      '/readyz',
      { schema: { tags, summary: 'Readiness: NATS answers, the saga runs, and the projector is running and caught up; a 503 names the part', response: { 200: readyBody, 503: errorBody } } },
      async () => {
        const notReady = (part: string, message: string, details?: Record<string, unknown>): ApiError => new ApiError(503, 'not_ready', message, { part, ...details });
        const ping = await deps.store.ping(NATS_PING_TIMEOUT_MS);
        if (ping === 'closed') throw notReady('nats', 'the NATS connection is closed');
        if (ping === 'no_answer') throw notReady('nats', 'NATS does not answer');
        if (deps.projector.error) throw notReady('projector', 'the projector has stopped', { code: 'projector_stopped' });
        if (deps.saga && !deps.saga.alive) throw notReady('saga', 'the saga consumer loop has stopped');
        const lag = await deps.projector.lag();
        if (lag > o.maxReadyLag) throw notReady('projector', `the projector lags ${lag} positions behind the log`, { lag, maxLag: o.maxReadyLag });
        // Serving, but not whole: nodes whose log holds a message that does not decode (ADR 0012), or a read model retrying a transient SQLite error.
        const brokenNodes = deps.projector.brokenNodeCount();
        const retrying = deps.projector.retrying;
        const status = brokenNodes > 0 || retrying ? ('degraded' as const) : ('ready' as const);
        return { status, checks: { nats: 'ok' as const, projector: { checkpoint: deps.projector.checkpoint, lag, brokenNodes, retrying: retrying?.code ?? null } } };
      },
    );

    app.get(
      '/v1/version',
      { schema: { tags, summary: 'The control plane\'s product version and playbook bundle digest (what expectPlaybook must be)', response: { 200: versionBody, ...errorResponses() } } },
      async () => ({ version: deps.playbookBundle.version, playbookDigest: deps.playbookBundle.digest }),
    );

    app.get(
      '/metrics',
      { schema: { tags, summary: 'Prometheus text exposition', response: { 200: z.string() } } },
      async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await deps.metrics.render()),
    );
  };
