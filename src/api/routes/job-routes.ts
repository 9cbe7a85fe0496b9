import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { notFound } from '../api-error.ts';
import { cancelJob } from '../../commands/provision-service.ts';
import { cancelJobBody, consistencyQuery, errorBody, jobAccepted, jobParams, jobView, streamQuery } from '../api-schemas.ts';
import { isTerminalStatus, streamJob } from '../job-stream.ts';
import { awaitPosition } from '../read-your-writes.ts';
import { SseStream, StreamQuota } from '../sse.ts';
import { errorResponses } from './error-responses.ts';

const tags = ['jobs'];

/** Open job streams allowed per job and in total; each holds an ordered reader on the log. */
export const JOB_STREAM_LIMITS = { perKey: 8, total: 256 };

export const jobRoutes =
  (deps: ApiDeps, o: { waitMs: number; now: () => string; heartbeatMs: number; openStreams: Set<SseStream>; streamLimits?: { perKey: number; total: number } }): FastifyPluginAsyncZod =>
  async (app) => {
    const quota = new StreamQuota(o.streamLimits ?? JOB_STREAM_LIMITS);
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
          summary: 'Server-Sent Events: job-event (with id = position), progress (Ansible tasks), end (429 too_many_streams when the stream caps are reached)',
          params: jobParams,
          querystring: streamQuery,
          headers: z.looseObject({ 'last-event-id': z.coerce.number().int().min(0).optional() }),
          response: { 200: z.string().describe('text/event-stream'), ...errorResponses(404), 429: errorBody },
        },
      },
      async (req, reply) => {
        const job = await findJob(req.params.jobId, req.query.minPosition, reply);
        const slot = quota.take(job.id);
        if ('full' in slot) {
          const scope = slot.full === 'per_job' ? `job ${job.id}` : 'this server';
          return reply.code(429).send({ error: { code: 'too_many_streams', message: `${slot.limit} streams are already open for ${scope}`, details: { scope: slot.full, limit: slot.limit } } });
        }
        const sse = new SseStream(reply, o.heartbeatMs, o.openStreams);
        sse.onClose(slot.release);
        // A Last-Event-ID past the job's last position cannot be a position of this job: resume from its last one.
        const after = Math.min(req.headers['last-event-id'] ?? 0, job.position);
        const finished = isTerminalStatus(job.status) ? { status: job.status, position: job.position } : null;
        await streamJob(deps, sse, { nodeId: job.nodeId, jobId: job.id, after, finished });
        return reply;
      },
    );
  };
