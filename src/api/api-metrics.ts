import type { JobStatus } from '../events/node-state.ts';
import { SERIES } from '../metrics/metric-names.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Projector } from '../projections/projector.ts';
import type { ReadModelQueries } from '../projections/read-model-queries.ts';

const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const projection = 'nodes';

/** Gauges read at scrape time; the saga adds step latencies and provider-call counters itself. */
export const registerApiGauges = (metrics: Metrics, queries: ReadModelQueries, projector: Projector): void => {
  metrics.gauge(SERIES.jobs, () => {
    const counts = queries.countJobsByStatus();
    // Every status is always present, so a dashboard sees 0 rather than a missing series.
    return JOB_STATUSES.map((status) => [{ status }, counts[status] ?? 0] as const);
  });
  metrics.gauge(SERIES.projectorCheckpoint, () => [[{ projection }, projector.checkpoint]]);
  metrics.gauge(SERIES.projectorLag, async () => [[{ projection }, await projector.lag()]]);
  metrics.gauge(SERIES.brokenNodes, () => [[{ projection }, queries.brokenNodeCount()]]);
};
