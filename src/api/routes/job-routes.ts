import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { notFound } from '../api-error.ts';
import { cancelJob } from '../api-commands.ts';
import { cancelJobBody, consistencyQuery, jobAccepted, jobParams, jobView, streamQuery } from '../api-schemas.ts';
import { streamJob } from '../job-stream.ts';
import { awaitPosition } from '../read-your-writes.ts';
import { SseStream } from '../sse.ts';
import { errorResponses } from './error-responses.ts';

const tags = ['jobs'];

export const jobRoutes =
  (deps: ApiDeps, o: { waitMs: number; now: () => string; heartbeatMs: number; openStreams: Set<SseStream> }): FastifyPluginAsyncZod =>
  async (app) => {
    /** The job from the read model, after the read-your-writes wait. */
    const findJob = async (jobId: string, minPosition: number | undefined, reply: Parameters<typeof awaitPosition>[1]) => {
      await awaitPosition(deps.projector, reply, minPosition, o.waitMs);
      const job = deps.queries.getJob(jobId);
      if (!job) throw notFound(`job ${jobId}`);
      return job;
    };

    app.get(
      '/v1/jobs/:jobId',
      { schema: { tags, summary: 'One job from the read model', params: jobParams, querystring: consistencyQuery, response: { 200: jobView, ...errorResponses(404) } } },
      async (req, reply) => findJob(req.params.jobId, req.query.minPosition, reply),
    );

    app.post(
      '/v1/jobs/:jobId/cancel',
      {
        schema: {
          tags,
          summary: 'Ask for a queued or running job to be cancelled (202: the saga confirms it)',
          params: jobParams,
          querystring: consistencyQuery,
          body: cancelJobBody,
          response: { 202: jobAccepted, ...errorResponses(404, 409, 413, 415) },
        },
      },
      async (req, reply) => {
        const job = await findJob(req.params.jobId, req.query.minPosition, reply);
        const reason = req.body?.reason ?? 'cancelled through the API';
        return reply.code(202).send(await cancelJob(deps.repo, job.nodeId, job.id, { reason, now: o.now() }));
      },
    );

    app.get(
      '/v1/jobs/:jobId/stream',
      {
        schema: {
          tags,
          summary: 'Server-Sent Events: job-event (with id = position), progress (Ansible tasks), end',
          params: jobParams,
          querystring: streamQuery,
          headers: z.looseObject({ 'last-event-id': z.coerce.number().int().min(0).optional() }),
          response: { 200: z.string().describe('text/event-stream'), ...errorResponses(404) },
        },
      },
      async (req, reply) => {
        const job = await findJob(req.params.jobId, req.query.minPosition, reply);
        const sse = new SseStream(reply, o.heartbeatMs, o.openStreams);
        await streamJob(deps, sse, { nodeId: job.nodeId, jobId: job.id, after: req.headers['last-event-id'] ?? 0 });
        return reply;
      },
    );
  };
