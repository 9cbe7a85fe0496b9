import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { ApiError } from '../api-error.ts';
import { projectionList, rebuildBody, rebuildReport } from '../api-schemas.ts';
import { SseStream } from '../sse.ts';
import { errorResponses } from './error-responses.ts';

const tags = ['projections'];

export const projectionRoutes =
  (deps: ApiDeps, o: { heartbeatMs: number; openStreams: Set<SseStream> }): FastifyPluginAsyncZod =>
  async (app) => {
    // One rebuild at a time: answered here as a 409 before any work (the projector itself refuses with REBUILD_RUNNING).
    let rebuilding = false;

    app.get(
      '/v1/projections',
      { schema: { tags, summary: 'Projection checkpoints and lag', response: { 200: projectionList, ...errorResponses() } } },
      async () => {
        const lastPosition = await deps.store.lastPosition();
        const checkpoint = deps.projector.checkpoint;
        const status = {
          name: 'nodes' as const,
          checkpoint,
          lastPosition,
          lag: Math.max(0, lastPosition - checkpoint),
          rebuilding,
          error: deps.projector.error?.message ?? null,
          retrying: deps.projector.retrying,
          brokenNodeCount: deps.queries.brokenNodeCount(),
          brokenNodes: deps.queries.brokenNodes(),
        };
        return { projections: [status] };
      },
    );

    app.post(
      '/v1/projections/rebuild',
      {
        schema: {
          tags,
          summary: 'Rebuild a projection beside the live one and swap it in. With Accept: text/event-stream, streams progress events, then report.',
          body: rebuildBody,
          headers: z.looseObject({ accept: z.string().optional() }),
          response: { 200: rebuildReport, ...errorResponses(409, 413, 415) },
        },
      },
      async (req, reply) => {
        if (rebuilding) throw new ApiError(409, 'conflict', 'a rebuild of this projection is already running');
        rebuilding = true;
        const name = req.body?.name ?? 'nodes';
        try {
          if (!req.headers.accept?.includes('text/event-stream')) return { name, ...(await deps.projector.rebuild()) };
          const sse = new SseStream(reply, o.heartbeatMs, o.openStreams);
          try {
            const report = await deps.projector.rebuild((p) => sse.send('progress', p));
            sse.send('report', { name, ...report });
          } catch (e) {
            deps.logger.error({ err: e }, 'projection rebuild failed');
            sse.send('error', { error: { code: 'internal', message: 'the rebuild failed; the live projection is unchanged' } });
          } finally {
            sse.end();
          }
          return reply;
        } finally {
          rebuilding = false;
        }
      },
    );
  };
