/**
 * A small in-process metrics registry rendered as Prometheus text. Counters and histograms
 * are keyed by name and a sorted label set; gauges are read at render time.
 */
type Labels = Record<string, string>;

const BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 1_800_000];

const key = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

export class Metrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly histograms = new Map<string, Map<string, Histogram>>();
  private readonly gauges = new Map<string, () => Promise<Array<[Labels, number]>> | Array<[Labels, number]>>();
  private readonly help = new Map<string, string>();

  inc(name: string, labels: Labels = {}, by = 1, help?: string): void {
    if (help) this.help.set(name, help);
    const series = this.counters.get(name) ?? new Map<string, number>();
    this.counters.set(name, series);
    const k = key(labels);
    series.set(k, (series.get(k) ?? 0) + by);
  }

  observeMs(name: string, labels: Labels, valueMs: number, help?: string): void {
    if (help) this.help.set(name, help);
    const series = this.histograms.get(name) ?? new Map<string, Histogram>();
    this.histograms.set(name, series);
    const k = key(labels);
    const h = series.get(k) ?? { buckets: BUCKETS_MS.map(() => 0), sum: 0, count: 0 };
    BUCKETS_MS.forEach((b, i) => {
      if (valueMs <= b) h.buckets[i] = (h.buckets[i] ?? 0) + 1;
    });
    h.sum += valueMs;
    h.count += 1;
    series.set(k, h);
  }

  /** A gauge whose series are computed when /metrics is scraped. */
  gauge(name: string, help: string, read: () => Promise<Array<[Labels, number]>> | Array<[Labels, number]>): void {
    this.help.set(name, help);
    this.gauges.set(name, read);
  }

  async render(): Promise<string> {
    const out: string[] = [];
    const header = (name: string, type: string): void => {
      const h = this.help.get(name);
      if (h) out.push(`# HELP ${name} ${h}`);
      out.push(`# TYPE ${name} ${type}`);
    };
    const series = (name: string, k: string, v: number): string => `${name}${k ? `{${k}}` : ''} ${v}`;
    for (const [name, s] of this.counters) {
      header(name, 'counter');
      for (const [k, v] of s) out.push(series(name, k, v));
    }
    for (const [name, s] of this.histograms) {
      header(name, 'histogram');
      for (const [k, h] of s) {
        BUCKETS_MS.forEach((b, i) => out.push(series(`${name}_bucket`, [k, `le="${b}"`].filter(Boolean).join(','), h.buckets[i] ?? 0)));
        out.push(series(`${name}_bucket`, [k, 'le="+Inf"'].filter(Boolean).join(','), h.count));
        out.push(series(`${name}_sum`, k, h.sum));
        out.push(series(`${name}_count`, k, h.count));
      }
    }
    for (const [name, read] of this.gauges) {
      header(name, 'gauge');
      for (const [labels, v] of await read()) out.push(series(name, key(labels), v));
    }
    return `${out.join('\n')}\n`;
  }
}
