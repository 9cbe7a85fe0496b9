import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { consoleRoutes, isConsolePath } from '../console/console-routes.ts';
import { newRequestId, requestLogSerializers } from '../logging/request-log.ts';
import type { ApiDeps, HttpLimits } from './api-deps.ts';
import { ApiError } from './api-error.ts';
import { registerApiGauges } from './api-metrics.ts';
import { bearerChecker } from './bearer-auth.ts';
import { errorHandler } from './error-handler.ts';
import { jobRoutes } from './routes/job-routes.ts';
import { nodeRoutes } from './routes/node-routes.ts';
import { opsRoutes } from './routes/ops-routes.ts';
import { eventRoutes } from './routes/event-routes.ts';
import { projectionRoutes } from './routes/projection-routes.ts';
import type { SseStream } from './sse.ts';

export type { ApiDeps, HttpLimits } from './api-deps.ts';

/** The only routes reachable without the API token. */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const BODY_LIMIT_BYTES = 64 * 1024;

export const DEFAULT_HTTP_LIMITS: HttpLimits = { requestTimeoutMs: 30_000, connectionTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 512 };
/** How often node looks for requests past requestTimeout (its default, 30 s, would double the bound). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

const serverOptions = (deps: ApiDeps, limits: HttpLimits): FastifyServerOptions => {
  const node = { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS };
  return {
    // Request logs (one line in, one out, each with reqId) through the app's pino; no header is logged.
    loggerInstance: deps.logger.child({ component: 'api' }, { serializers: requestLogSerializers }),
    genReqId: newRequestId,
    bodyLimit: BODY_LIMIT_BYTES,
    return503OnClosing: false,
    // A loaded machine (a crash restart with a burst of redelivered steps) must not fail the boot at the default 10 s.
    pluginTimeout: 60_000,
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: node,
    ...(deps.tls ? { https: { ...node, cert: deps.tls.cert, key: deps.tls.key } } : {}),
  } as FastifyServerOptions;
};

/** Builds the HTTP API (not yet listening): auth, stable errors, zod-validated routes, openapi.json. */
export const buildApiServer = (deps: ApiDeps): FastifyInstance => {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const heartbeatMs = deps.sseHeartbeatMs ?? 15_000;
  // A quiet SSE stream is only kept open by its heartbeats.
  if (heartbeatMs >= limits.connectionTimeoutMs) throw new Error(`the SSE heartbeat (${heartbeatMs} ms) must be shorter than the connection timeout (${limits.connectionTimeoutMs} ms)`);
  // With `https` the server is an https.Server; fastify's generics would type every route apart, and nothing here touches the raw server's type.
  const app = Fastify(serverOptions(deps, limits)) as unknown as FastifyInstance;
  app.server.maxConnections = limits.maxConnections;
  const zapp = app.withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new ApiError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`).body()));
  // JSON only: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');

  // Callback hooks, not async ones: no promise per hook on every request.
  const checkBearer = bearerChecker(deps.apiToken);
  app.addHook('onRequest', (req, reply, done) => {
    // The id of the request's log lines, so a caller can quote it.
    reply.header('x-request-id', req.id);
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    try {
      if (!PUBLIC_PATHS.has(path) && !isConsolePath(path)) checkBearer(req.headers.authorization);
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    // The route pattern, never the raw URL: one series per route, not per node id. SSE streams are hijacked and not observed.
    deps.metrics.observeHttpRequest({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  const openStreams = new Set<SseStream>();
  // Open SSE responses would keep close() waiting for clients to hang up.
  app.addHook('preClose', async () => {
    for (const s of [...openStreams]) s.end();
  });

  registerApiGauges(deps.metrics, deps.queries, deps.projector);
  const now = (): string => (deps.now ? deps.now() : new Date()).toISOString();
  const waitMs = deps.consistencyWaitMs ?? 5000;

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
  void zapp.register(eventRoutes(deps));
  void app.register(consoleRoutes);
  zapp.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
};
