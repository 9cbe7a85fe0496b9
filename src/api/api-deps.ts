import type { PlaybookBundle } from '../ansible/playbook-bundle.ts';
import type { NodeRepository } from '../commands/node-repository.ts';
import type { JobPolicy } from '../events/node-events.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Projector } from '../projections/projector.ts';
import type { ReadModelQueries } from '../projections/read-model-queries.ts';

/** Limits that keep one client from holding sockets or file descriptors forever (issue 9.8). */
export interface HttpLimits {
  /** Whole request (headers and body) must arrive within this; a stalled body is cut off. */
  requestTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed. SSE heartbeats must come more often. */
  connectionTimeoutMs: number;
  /** An idle keep-alive socket between requests is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections beyond this are closed on accept. Stays well below the usual 1024 open-file limit. */
  maxConnections: number;
}

export interface ApiDeps {
  store: EventStore;
  repo: NodeRepository;
  projector: Projector;
  queries: ReadModelQueries;
  metrics: Metrics;
  /** The retry and timeout policy every new job is requested with. */
  policy: JobPolicy;
  /** The playbook bundle this control plane runs (computed once at start-up): `expectPlaybook` is checked against it, `/v1/version` shows it. */
  playbookBundle: PlaybookBundle;
  apiToken: string;
  logger: Logger;
  /** How long a query with ?minPosition= waits for the projection (default 5 s). */
  consistencyWaitMs?: number;
  /** /readyz fails above this projector lag (default 1000 positions). */
  maxReadyLag?: number;
  /** SSE keep-alive comment interval (default 15 s). */
  sseHeartbeatMs?: number;
  /** Timeouts and the connection cap; defaults in server.ts (DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
  /** Serve HTTPS with this PEM certificate and key (PRESSLUFT_TLS_CERT/KEY); plain HTTP when absent. */
  tls?: { cert: Buffer; key: Buffer };
  /** The saga's liveness for /healthz and /readyz; absent in the api role. */
  saga?: { readonly alive: boolean } | null;
  /** Clock for command timestamps; tests pin it. */
  now?: () => Date;
}
