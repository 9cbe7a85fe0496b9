import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.ts';
import { SERIES } from '../../src/metrics/metric-names.ts';
import { TOKEN, useListeningApi } from './listening-api.ts';
import { parsePrometheusText, type Family } from './prometheus-text.ts';

const api = useListeningApi({}, 'pm');
const auth = { authorization: `Bearer ${TOKEN}` };

const scrape = async (): Promise<Map<string, Family>> => {
  const res = await fetch(`${api.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await res.text());
};

const family = (families: Map<string, Family>, name: string): Family => {
  const f = families.get(name);
  if (!f) throw new Error(`no family ${name}; have ${[...families.keys()].join(', ')}`);
  return f;
};

describe('GET /metrics (prom-client, scraped over HTTP and parsed strictly)', () => {
  it('exposes the default process and GC metrics', async () => {
    const families = await scrape();
    expect(family(families, 'process_cpu_user_seconds_total').type).toBe('counter');
    expect(family(families, 'process_resident_memory_bytes').samples[0]?.value).toBeGreaterThan(1e6);
    expect(family(families, 'nodejs_heap_size_used_bytes').type).toBe('gauge');
    expect(family(families, 'nodejs_eventloop_lag_seconds').type).toBe('gauge');
    expect(family(families, 'nodejs_gc_duration_seconds').type).toBe('histogram');
  });

  it('has a request duration histogram in seconds by route pattern, method and status', async () => {
    expect((await fetch(`${api.url}/v1/nodes/n_doesnotexist`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${api.url}/v1/nodes`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${api.url}/v1/nodes`)).status).toBe(401);
    // A request is counted when the server sees its response finish, which can come after the client has it.
    const countsIn = (h: Family) => {
      const counts = h.samples.filter((s) => s.name === 'http_request_duration_seconds_count');
      return (labels: Record<string, string>): number | undefined => counts.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    };
    const expected = [{ method: 'GET', route: '/v1/nodes/:nodeId', status_code: '404' }, { method: 'GET', route: '/v1/nodes', status_code: '200' }, { method: 'GET', route: '/v1/nodes', status_code: '401' }];
    await expect.poll(async () => expected.map(countsIn(family(await scrape(), SERIES.httpRequestDuration.name))), { timeout: 10_000, interval: 50 }).toEqual([1, 1, 1]);
    const h = family(await scrape(), SERIES.httpRequestDuration.name);
    expect(h.type).toBe('histogram');
    const count = countsIn(h);
    expect(expected.map(count)).toEqual([1, 1, 1]);
    // The raw id never becomes a label value: one series per route, not per node.
    expect(h.samples.some((s) => Object.values(s.labels).some((v) => v.includes('n_doesnotexist')))).toBe(false);
    // Seconds, not milliseconds: a local answer is far below one second.
    const sum = h.samples.find((s) => s.name === 'http_request_duration_seconds_sum' && s.labels.route === '/v1/nodes' && s.labels.status_code === '200');
    expect(sum?.value).toBeGreaterThan(0);
    expect(sum?.value).toBeLessThan(1);
  });

  it('keeps the read-model gauges, including nodes with a broken projection', async () => {
    const families = await scrape();
    expect(family(families, 'pressluft_jobs').samples.map((s) => s.labels.status).sort()).toEqual(['cancelled', 'failed', 'queued', 'running', 'succeeded']);
    expect(family(families, 'pressluft_projector_lag').samples).toEqual([{ name: 'pressluft_projector_lag', labels: { projection: 'nodes' }, value: 0 }]);
    expect(family(families, 'pressluft_projector_checkpoint').type).toBe('gauge');
    expect(family(families, 'pressluft_projection_broken_nodes').samples).toEqual([{ name: 'pressluft_projection_broken_nodes', labels: { projection: 'nodes' }, value: 0 }]);
  });

  it('records saga step durations in seconds and provider calls as a _total counter', async () => {
    api.metrics.observeSagaStep({ step: 'createServer', outcome: 'done' }, 0.3);
    api.metrics.countProviderCall({ step: 'createServer', code: 'ok' });
    api.metrics.countProviderCall({ step: 'createServer', code: 'ok' });
    const families = await scrape();
    const steps = family(families, 'pressluft_saga_step_duration_seconds');
    expect(steps.type).toBe('histogram');
    const bucket = (le: string) => steps.samples.find((s) => s.name.endsWith('_bucket') && s.labels.le === le && s.labels.step === 'createServer')?.value;
    expect([bucket('0.25'), bucket('0.5'), bucket('+Inf')]).toEqual([0, 1, 1]);
    const calls = family(families, 'pressluft_provider_calls_total');
    expect(calls.type).toBe('counter');
    expect(calls.samples).toEqual([{ name: 'pressluft_provider_calls_total', labels: { step: 'createServer', code: 'ok' }, value: 2 }]);
  });

  it('keeps each instance on its own registry', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.countProviderCall({ step: 'x', code: 'ok' });
    expect(family(parsePrometheusText(await a.render()), 'pressluft_provider_calls_total').samples).toHaveLength(1);
    expect(family(parsePrometheusText(await b.render()), 'pressluft_provider_calls_total').samples).toHaveLength(0);
  });
});

describe('the strict exposition parser', () => {
  it('refuses what the format does not allow', () => {
    expect(() => parsePrometheusText('# TYPE a counter\na{x="1"} 1\n')).not.toThrow();
    expect(() => parsePrometheusText('# TYPE a counter\na{x=1} 1\n')).toThrow(/not a sample/);
    expect(() => parsePrometheusText('# TYPE a counter\nb 1\n')).toThrow(/outside its family/);
    expect(() => parsePrometheusText('# TYPE a counter\na one\n')).toThrow(/bad sample value/);
    expect(() => parsePrometheusText('# TYPE a counter\n# TYPE b gauge\n# TYPE a counter\n')).toThrow(/twice/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n')).toThrow(/cumulative/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n')).toThrow(/\+Inf/);
  });
});
