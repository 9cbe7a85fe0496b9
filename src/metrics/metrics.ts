import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HTTP_BUCKETS_SECONDS, SAGA_BUCKETS_SECONDS, SERIES, type SeriesSpec } from './metric-names.ts';

type Labels<L extends string> = Partial<Record<L, string>>;
/** A gauge's series, read when /metrics is scraped. */
export type GaugeReading<L extends string> = ReadonlyArray<readonly [Labels<L>, number]>;

/**
 * The process's metrics on prom-client. Each instance owns its Registry, never the global
 * default one: tests run many control planes in one process, and each must scrape only its own.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<string>;
  private readonly sagaStepDuration: Histogram<string>;
  private readonly providerCalls: Counter<string>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const histogram = (s: SeriesSpec, buckets: number[]) => new Histogram({ name: s.name, help: s.help, labelNames: s.labelNames, buckets, registers });
    this.httpDuration = histogram(SERIES.httpRequestDuration, HTTP_BUCKETS_SECONDS);
    this.sagaStepDuration = histogram(SERIES.sagaStepDuration, SAGA_BUCKETS_SECONDS);
    this.providerCalls = new Counter({ name: SERIES.providerCalls.name, help: SERIES.providerCalls.help, labelNames: SERIES.providerCalls.labelNames, registers });
  }

  /** The Content-Type of `render()`'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  observeHttpRequest(labels: { method: string; route: string; status_code: string }, seconds: number): void {
    this.httpDuration.observe(labels, seconds);
  }

  observeSagaStep(labels: { step: string; outcome: string }, seconds: number): void {
    this.sagaStepDuration.observe(labels, seconds);
  }

  countProviderCall(labels: { step: string; code: string }): void {
    this.providerCalls.inc(labels);
  }

  /**
   * A gauge computed at scrape time. Registering the same series again replaces the reader
   * (an API server rebuilt on the same Metrics reads from its new queries).
   */
  gauge<L extends string>(spec: SeriesSpec<L>, read: () => GaugeReading<L> | Promise<GaugeReading<L>>): void {
    this.registry.removeSingleMetric(spec.name);
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames,
      registers: [this.registry],
      async collect() {
        // Set every series afresh, so a label value that is gone does not linger.
        this.reset();
        for (const [labels, value] of await read()) this.set(labels as Labels<string>, value);
      },
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
