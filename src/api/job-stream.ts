import { EventDecodeError } from '../events/event-codec.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import { taskProgress } from './api-schemas.ts';
import { toHistoryEntry } from './history-entry.ts';
import type { SseStream } from './sse.ts';

type TerminalStatus = 'succeeded' | 'failed' | 'cancelled';

/** The terminal event of a job and the status it leaves the job in. */
const TERMINAL: Record<string, TerminalStatus> = {
  ProvisionSucceeded: 'succeeded',
  ProvisionFailed: 'failed',
  JobCancelled: 'cancelled',
};

export const isTerminalStatus = (status: string): status is TerminalStatus => Object.values(TERMINAL).includes(status as TerminalStatus);

/**
 * Streams one job over SSE: its events from the node's stream (history first, then live, in log
 * order, from the store's ordered follower) and the saga's Ansible task progress, until the job's
 * terminal event. `finished` is the job's terminal status and position when the read model
 * already has them: a resume at or past that position ends at once.
 */
export const streamJob = async (
  o: { store: EventStore; logger: Logger },
  sse: SseStream,
  job: { nodeId: string; jobId: string; after: number; finished: { status: TerminalStatus; position: number } | null },
): Promise<void> => {
  if (job.finished && job.after >= job.finished.position) {
    sse.send('end', { jobId: job.jobId, status: job.finished.status, position: job.finished.position });
    sse.end();
    return;
  }
  const stopProgress = o.store.subscribeProgress(job.jobId, (raw) => {
    const p = taskProgress.safeParse(raw);
    if (p.success && p.data.jobId === job.jobId) sse.send('progress', p.data);
  });
  const closed = new AbortController();
  sse.onClose(() => closed.abort());
  try {
    for await (const d of o.store.followStream(job.nodeId, job.after, { signal: closed.signal })) {
      const mine = d.events.filter((e) => e.correlationId === job.jobId);
      for (const [i, e] of mine.entries()) {
        // One decision can hold several events at one position: only its last carries the id, so a
        // client that drops mid-decision resumes (Last-Event-ID) before it and gets the whole decision again.
        sse.send('job-event', toHistoryEntry({ ...e, position: d.position }), i === mine.length - 1 ? d.position : undefined);
        const status = TERMINAL[e.type];
        if (status) {
          sse.send('end', { jobId: job.jobId, status, position: d.position });
          return;
        }
      }
    }
  } catch (e) {
    if (e instanceof EventDecodeError) {
      sse.send('error', { error: { code: 'node_unreadable', message: e.message, details: e.details } });
      return;
    }
    o.logger.error({ err: e, jobId: job.jobId }, 'job stream failed');
    sse.send('error', { error: { code: 'internal', message: 'the job stream failed; reconnect with Last-Event-ID to resume' } });
  } finally {
    stopProgress();
    sse.end();
  }
};
