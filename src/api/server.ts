import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ApiDeps } from './api-deps.ts';
import { ApiError } from './api-error.ts';
import { registerApiGauges } from './api-metrics.ts';
import { bearerChecker } from './bearer-auth.ts';
import { errorHandler } from './error-handler.ts';
import { jobRoutes } from './routes/job-routes.ts';
import { nodeRoutes } from './routes/node-routes.ts';
import { opsRoutes } from './routes/ops-routes.ts';
import { projectionRoutes } from './routes/projection-routes.ts';
import type { SseStream } from './sse.ts';

export type { ApiDeps } from './api-deps.ts';

/** The only routes reachable without the API token. */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const BODY_LIMIT_BYTES = 64 * 1024;

/** Builds the HTTP API (not yet listening): auth, stable errors, zod-validated routes, openapi.json. */
export const buildApiServer = (deps: ApiDeps): FastifyInstance => {
  const logger = deps.logger.child({ component: 'api' });
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES, return503OnClosing: false });
  const zapp = app.withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler(logger));
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new ApiError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`).body()));
  // JSON only: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');

  const checkBearer = bearerChecker(deps.apiToken);
  app.addHook('onRequest', async (req) => {
    if (!PUBLIC_PATHS.has(req.url.split('?')[0] ?? '')) checkBearer(req.headers.authorization);
  });

  const openStreams = new Set<SseStream>();
  // Open SSE responses would keep close() waiting for clients to hang up.
  app.addHook('preClose', async () => {
    for (const s of [...openStreams]) s.end();
  });

  registerApiGauges(deps.metrics, deps.queries, deps.projector);
  const now = (): string => (deps.now ? deps.now() : new Date()).toISOString();
  const waitMs = deps.consistencyWaitMs ?? 5000;
  const heartbeatMs = deps.sseHeartbeatMs ?? 15_000;

  void zapp.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Pressluft control plane API', version: '1.0.0', description: 'See docs/api.md. Errors: { error: { code, message, details? } }.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  void zapp.register(opsRoutes(deps, { maxReadyLag: deps.maxReadyLag ?? 1000 }));
  void zapp.register(nodeRoutes(deps, { waitMs, now }));
  void zapp.register(jobRoutes(deps, { waitMs, now, heartbeatMs, openStreams }));
  void zapp.register(projectionRoutes(deps, { heartbeatMs, openStreams }));
  zapp.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
};
