/**
 * Every series this process exports, named in one place. Prometheus conventions: base units
 * (seconds), `_total` on counters, `pressluft_` on our own series; `http_request_duration_seconds`
 * keeps the name dashboards expect. prom-client's default process and GC metrics come on top.
 */
export interface SeriesSpec<L extends string = string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
}

const series = <L extends string>(name: string, help: string, labelNames: readonly L[]): SeriesSpec<L> => ({ name, help, labelNames });

export const SERIES = {
  httpRequestDuration: series('http_request_duration_seconds', 'HTTP requests by method, route pattern and status code', ['method', 'route', 'status_code']),
  sagaStepDuration: series('pressluft_saga_step_duration_seconds', 'Time a saga step took, from dispatch to its recorded result or wait', ['step', 'outcome']),
  providerCalls: series('pressluft_provider_calls_total', 'Provider steps by outcome code', ['step', 'code']),
  jobs: series('pressluft_jobs', 'Jobs in the read model by status', ['status']),
  projectorCheckpoint: series('pressluft_projector_checkpoint', 'Last log position applied to the read model', ['projection']),
  projectorLag: series('pressluft_projector_lag', 'Log positions not yet applied to the read model', ['projection']),
  brokenNodes: series('pressluft_projection_broken_nodes', 'Nodes whose projection is broken by a message that does not decode', ['projection']),
} as const;

/** HTTP latency buckets: an API answer is milliseconds; a read-your-writes wait is bounded at seconds. */
export const HTTP_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Saga step buckets: a provider call is sub-second; a server boot minutes; an Ansible run up to its 30 min timeout. */
export const SAGA_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
