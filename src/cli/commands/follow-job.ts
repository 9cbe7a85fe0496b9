import { taskProgress, historyEntry, type HistoryEntry } from '../../api/api-schemas.ts';
import type { JobView } from '../../projections/read-model-queries.ts';
import type { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';
import { describeEvent, describeProgress } from '../event-description.ts';
import type { Output } from '../output.ts';

/**
 * Follows a job over its SSE stream, printing each step and Ansible task, and returns the exit
 * code of its outcome: 0 succeeded, 1 failed or cancelled. With --json it prints the final job.
 */
export const followJob = async (api: ApiClient, out: Output, jobId: string, minPosition: number): Promise<number> => {
  let end: { status: string; position: number } | null = null;
  let last: HistoryEntry | null = null;
  for await (const e of api.stream('GET', `/v1/jobs/${encodeURIComponent(jobId)}/stream?minPosition=${minPosition}`)) {
    const data: unknown = JSON.parse(e.data);
    if (e.event === 'job-event') {
      last = historyEntry.parse(data);
      if (!out.json) out.line(`  [${last.type}] ${describeEvent(last)}`);
    } else if (e.event === 'progress') {
      if (!out.json) out.line(`  [ansible] ${describeProgress(taskProgress.parse(data))}`);
    } else if (e.event === 'end') {
      end = data as { status: string; position: number };
    } else if (e.event === 'error') {
      throw new CliError('stream_failed', `the job stream broke off after position ${last?.position ?? minPosition}; run \`pressluft job get ${jobId}\``);
    }
  }
  if (!end) throw new CliError('stream_failed', `the job stream ended before job ${jobId} finished; run \`pressluft job get ${jobId}\``);
  const job = await api.get<JobView>(`/v1/jobs/${encodeURIComponent(jobId)}?minPosition=${end.position}`);
  out.result(job, () => `job ${job.id} ${job.status}${job.errorCode ? `: ${job.errorCode}${job.errorMessage ? ` — ${job.errorMessage.split('\n').at(-1) ?? ''}` : ''}` : ''}`);
  return job.status === 'succeeded' ? 0 : 1;
};
