import type { JobStatus } from '../events/node-state.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Projector } from '../projections/projector.ts';
import type { ReadModelQueries } from '../projections/read-model-queries.ts';

const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** Gauges read at scrape time; the saga adds step latencies and provider-call counters itself. */
export const registerApiGauges = (metrics: Metrics, queries: ReadModelQueries, projector: Projector): void => {
  metrics.gauge('pressluft_jobs', 'Jobs in the read model by status', () => {
    const counts = queries.countJobsByStatus();
    // Every status is always present, so a dashboard sees 0 rather than a missing series.
    return JOB_STATUSES.map((status) => [{ status }, counts[status] ?? 0]);
  });
  metrics.gauge('pressluft_projector_checkpoint', 'Last log position applied to the read model', () => [[{ projection: 'nodes' }, projector.checkpoint]]);
  metrics.gauge('pressluft_projector_lag', 'Log positions not yet applied to the read model', async () => [[{ projection: 'nodes' }, await projector.lag()]]);
};
