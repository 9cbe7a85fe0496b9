import type { NodeRepository } from '../commands/node-repository.ts';
import type { JobPolicy } from '../events/node-events.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Projector } from '../projections/projector.ts';
import type { ReadModelQueries } from '../projections/read-model-queries.ts';

export interface ApiDeps {
  store: EventStore;
  repo: NodeRepository;
  projector: Projector;
  queries: ReadModelQueries;
  metrics: Metrics;
  /** The retry and timeout policy every new job is requested with. */
  policy: JobPolicy;
  apiToken: string;
  logger: Logger;
  /** How long a query with ?minPosition= waits for the projection (default 5 s). */
  consistencyWaitMs?: number;
  /** /readyz fails above this projector lag (default 1000 positions). */
  maxReadyLag?: number;
  /** SSE keep-alive comment interval (default 15 s). */
  sseHeartbeatMs?: number;
  /** Clock for command timestamps; tests pin it. */
  now?: () => Date;
}
