import { z } from 'zod';
import type { JobView } from '../../projections/read-model-queries.ts';
import { connectApi } from '../api-client.ts';
import { usageError } from '../cli-error.ts';
import { parseCommandArgs } from '../cli-options.ts';
import { jobSummary } from '../job-summary.ts';
import { createOutput, type Streams } from '../output.ts';
import { followJob } from './follow-job.ts';

export const JOB_USAGE = `usage: pressluft job get JOB_ID [--min-position P]     status, step, the error in one line, what ran
       pressluft job log JOB_ID                            the redacted tail of the last Ansible run's output
       pressluft job watch JOB_ID
       pressluft job cancel JOB_ID [--reason TEXT]
common: [--url URL] [--token-file FILE | --token-stdin] [--json]`;

const oneId = z.tuple([z.string()]);

export const runJobCommand = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'get': {
      const { global, values: v } = parseCommandArgs(rest, { 'min-position': { type: 'string' } }, z.object({ _: oneId, 'min-position': z.coerce.number().int().min(0).optional() }), JOB_USAGE);
      const mp = v['min-position'] === undefined ? '' : `?minPosition=${v['min-position']}`;
      const job = await (await connectApi(global, env)).get<JobView>(`/v1/jobs/${encodeURIComponent(v._[0])}${mp}`);
      createOutput(streams, global.json).result(job, () => jobSummary(job));
      return 0;
    }
    case 'log': {
      const { global, values: v } = parseCommandArgs(rest, {}, z.object({ _: oneId }), JOB_USAGE);
      const job = await (await connectApi(global, env)).get<JobView>(`/v1/jobs/${encodeURIComponent(v._[0])}`);
      const out = createOutput(streams, global.json);
      if (out.json) out.result({ jobId: job.id, outputTail: job.outputTail }, () => '');
      // The tail as the runner stored it (redacted), byte for byte: it is meant for grep and less.
      else if (job.outputTail) streams.stdout.write(job.outputTail.endsWith('\n') ? job.outputTail : `${job.outputTail}\n`);
      else out.error(`job ${job.id} has no Ansible output recorded`);
      return 0;
    }
    case 'watch': {
      const { global, values: v } = parseCommandArgs(rest, {}, z.object({ _: oneId }), JOB_USAGE);
      return followJob(await connectApi(global, env), createOutput(streams, global.json), v._[0], 0);
    }
    case 'cancel': {
      const { global, values: v } = parseCommandArgs(rest, { reason: { type: 'string' } }, z.object({ _: oneId, reason: z.string().max(500).optional() }), JOB_USAGE);
      const res = await (await connectApi(global, env)).post<{ jobId: string; position: number }>(`/v1/jobs/${encodeURIComponent(v._[0])}/cancel`, v.reason ? { reason: v.reason } : undefined);
      createOutput(streams, global.json).result(res, () => `cancel of job ${res.jobId} requested (position ${res.position}); the worker stops it at the next step`);
      return 0;
    }
    default:
      throw usageError(sub ? `unknown job command: ${sub}` : 'missing job command', JOB_USAGE);
  }
};
