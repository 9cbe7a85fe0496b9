import type { NodeRepository } from '../commands/node-repository.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import { taskProgress } from './api-schemas.ts';
import { toHistoryEntry } from './history-entry.ts';
import { WakeSignal, type SseStream } from './sse.ts';

/** The terminal event of a job and the status it leaves the job in. */
const TERMINAL: Record<string, 'succeeded' | 'failed' | 'cancelled'> = {
  ProvisionSucceeded: 'succeeded',
  ProvisionFailed: 'failed',
  JobCancelled: 'cancelled',
};

/** The log is re-read at least this often, in case a wake-up message was missed. */
const POLL_MS = 1000;

/**
 * Streams one job over SSE: its events from the node's stream (history first, then live) and the
 * saga's Ansible task progress, until the job's terminal event. Core NATS messages on the node's
 * subject only wake the reader; the events themselves are read from JetStream in order, so a
 * missed wake-up delays an event but never loses or reorders it.
 */
export const streamJob = async (
  o: { store: EventStore; repo: NodeRepository; logger: Logger },
  sse: SseStream,
  job: { nodeId: string; jobId: string; after: number },
): Promise<void> => {
  const nc = o.store.nc;
  const wake = new WakeSignal();
  const decoder = new TextDecoder();
  const progress = nc.subscribe(`${o.store.opts.subjectPrefix}.progress.${job.jobId}`, {
    callback: (err, msg) => {
      if (err) return;
      let raw: unknown;
      try {
        raw = JSON.parse(decoder.decode(msg.data));
      } catch {
        return;
      }
      const p = taskProgress.safeParse(raw);
      if (p.success && p.data.jobId === job.jobId) sse.send('progress', p.data);
    },
  });
  const appended = nc.subscribe(o.store.subjectFor(job.nodeId), { callback: () => wake.notify() });
  sse.onClose(() => {
    progress.unsubscribe();
    appended.unsubscribe();
    wake.notify();
  });
  let after = job.after;
  try {
    while (!sse.closed) {
      for (const e of await o.repo.history(job.nodeId, { after })) {
        after = e.position;
        if (e.correlationId !== job.jobId) continue;
        sse.send('job-event', toHistoryEntry(e), e.position);
        const status = TERMINAL[e.type];
        if (status) {
          sse.send('end', { jobId: job.jobId, status, position: e.position });
          return;
        }
      }
      await wake.wait(POLL_MS);
    }
  } catch (e) {
    o.logger.error({ err: e, jobId: job.jobId }, 'job stream failed');
    sse.send('error', { error: { code: 'internal', message: 'the job stream failed; reconnect with Last-Event-ID to resume' } });
  } finally {
    sse.end();
  }
};
