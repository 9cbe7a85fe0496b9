/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it throws on any
 * line the format does not allow, on samples outside their family's TYPE block, on a family
 * declared twice, and on histograms whose buckets are not cumulative or miss +Inf.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: MetricType;
  help: string | null;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL}=${LABEL_VALUE})(?:,${LABEL}=${LABEL_VALUE})*,?)?\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL_PAIR = new RegExp(`(${LABEL})=(${LABEL_VALUE})`, 'g');
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/** Values as Prometheus reads them (Go's ParseFloat): Inf and NaN in any case; prom-client writes `Nan`. */
const parseValue = (s: string, line: string): number => {
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity;
  if (/^-inf(inity)?$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad sample value in: ${line}`);
  return Number(s);
};

const unescape = (quoted: string): string => quoted.slice(1, -1).replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));

/** The family a sample belongs to: histograms and summaries add suffixes to their family name. */
const familyOf = (sample: string, families: Map<string, Family>): Family | undefined => {
  const direct = families.get(sample);
  if (direct) return direct;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  const f = m?.[1] ? families.get(m[1]) : undefined;
  return f && (f.type === 'histogram' || (f.type === 'summary' && m?.[2] !== 'bucket')) ? f : undefined;
};

const checkHistogram = (f: Family): void => {
  const series = new Map<string, Sample[]>();
  for (const s of f.samples.filter((x) => x.name === `${f.name}_bucket`)) {
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${f.name}_bucket without le`);
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, buckets] of series) {
    const les = buckets.map((b) => parseValue(b.labels.le ?? '', f.name));
    if (les.at(-1) !== Infinity) throw new Error(`${f.name}${key} has no +Inf bucket`);
    buckets.forEach((b, i) => {
      if (i > 0 && (les[i]! <= les[i - 1]! || b.value < buckets[i - 1]!.value)) throw new Error(`${f.name}${key} buckets are not cumulative`);
    });
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === key);
    if (!count || count.value !== buckets.at(-1)!.value) throw new Error(`${f.name}${key}: _count differs from the +Inf bucket`);
    if (!f.samples.some((s) => s.name === `${f.name}_sum` && JSON.stringify(s.labels) === key)) throw new Error(`${f.name}${key} has no _sum`);
  }
};

export const parsePrometheusText = (text: string): Map<string, Family> => {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current = null as Family | null;
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const help = HELP.exec(line);
    const type = TYPE.exec(line);
    if (help || type) {
      const name = (help ?? type)![1]!;
      if (current?.name !== name) {
        if (current) closed.add(current.name);
        if (closed.has(name) || families.has(name)) throw new Error(`family ${name} declared twice`);
        current = { name, type: 'untyped', help: null, samples: [] };
        families.set(name, current);
      }
      if (help) current.help = help[2]!;
      if (type) current.type = type[2] as MetricType;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const family = familyOf(m[1]!, families);
    if (!family || family !== current) throw new Error(`sample outside its family's block: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL_PAIR)) {
      if (k! in labels) throw new Error(`label ${k} twice in: ${line}`);
      labels[k!] = unescape(v!);
    }
    family.samples.push({ name: m[1]!, labels, value: parseValue(m[3]!, line) });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
};
