import { connect, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logging/logger.ts';
import { NatsVersionUnsupported } from './event-store-errors.ts';

/** The oldest nats-server a replicated (R3) stream may run on: nats-server #4320. */
export const MIN_CLUSTER_SERVER_VERSION = '2.10.0';

/**
 * Where the store connects: a URL, a comma-separated list of URLs, or full connection options
 * (servers plus user/pass, token or an authenticator). The store owns the connection either way.
 */
export type NatsTarget = string | NodeConnectionOptions;

// noAsyncTraces: the client would otherwise build an Error with a stack for every request (2.2 s of 39 s CPU at 2,000 nodes).
const DEFAULTS: NodeConnectionOptions = { name: 'pressluft', maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true };

/** Compares dotted versions numerically: "2.9.10" < "2.10.0". */
export const versionBelow = (version: string, min: string): boolean => {
  const a = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
};

/** Refuses replicas > 1 on a server older than 2.10 (nats-server #4320: racing expected-sequence writers could both win). */
export const assertServerSupportsReplicas = (version: string, replicas: number): void => {
  if (replicas > 1 && versionBelow(version, MIN_CLUSTER_SERVER_VERSION)) throw new NatsVersionUnsupported(version, replicas, MIN_CLUSTER_SERVER_VERSION);
};

export const connectionOptionsFor = (target: NatsTarget): NodeConnectionOptions =>
  typeof target === 'string'
    ? { ...DEFAULTS, servers: target.split(',').map((s) => s.trim()).filter(Boolean) }
    : { ...DEFAULTS, ...target };

/** Connects and warns when the server is too old for clustered deployments. */
export const connectNats = async (target: NatsTarget, logger: Logger): Promise<NatsConnection> => {
  const nc = await connect(connectionOptionsFor(target));
  const version = nc.info?.version ?? '0.0.0';
  if (versionBelow(version, MIN_CLUSTER_SERVER_VERSION)) {
    // nats-server #4320: R3 expected-sequence checks were not serializable before 2.9.21; 2.10 is our floor for clusters.
    logger.warn({ serverVersion: version }, 'nats-server is older than 2.10: fine for a single node, but clustered (R3) deployments need nats-server >= 2.10');
  }
  return nc;
};
