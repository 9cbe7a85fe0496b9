/**
 * Saga orchestration benchmark with a ZERO-LATENCY Hetzner simulator and a NO-OP Ansible runner:
 * it measures our orchestration (consumer, load, decide, append), not the cloud or Ansible.
 *
 *   node --import tsx bench/saga.ts [--n 1000] [--rounds 3] [--latency 50] [--concurrency 32]
 *
 * Targets (issue): step dispatch latency p99 <= 50 ms; >= 100 provisions/s for n concurrent provisions.
 *
 * Dispatch latency, exactly: for every message the saga appends that leads to a further step, the time
 * from that append's ack (as the appending code sees it) to the first moment the saga starts the next
 * step for the same node:
 *  - provider and runner steps (ensureSshKey, createServer, pollActions, awaitServer, runAnsible):
 *    the saga's onBoundary('before-effect') hook, fired right before the port call;
 *  - record-only steps (StartAttempt, the create intent, AnsibleStarted) have no effect: their start is
 *    the moment the saga issues the append (EventStore.append entered). That includes the version check
 *    handleCommand does first (one round trip), so it is an upper bound for those steps.
 * A poll repeated after a nak is not a dispatch and is counted separately.
 */
import { createServer, type Server } from 'node:net';
import { z } from 'zod';
import { handleCommand } from '../src/commands/command-handler.ts';
import { NodeRepository } from '../src/commands/node-repository.ts';
import type { EventEnvelope } from '../src/events/envelope.ts';
import { EventStore } from '../src/eventstore/event-store.ts';
import {
  benchLogger, benchPolicy, cpuMeter, natsPid, benchSpec, fmt, intFlag, loadAverage, median, nowMs, onCleanup, parseFlags, percentile, runBench,
  startBenchNats, startSimulatorProcess, table, verdict,
  benchSaga,
} from './bench-support.ts';

const flags = parseFlags(
  z.object({
    n: intFlag(1000),
    rounds: intFlag(3),
    latency: intFlag(50),
    concurrency: intFlag(32),
  }),
);

const P99_TARGET_MS = 50;
const THROUGHPUT_TARGET = 100;


/** Stands in for each node's sshd (the saga probes the port before Ansible); accepts and hangs up. */
const fakeSshd = async (): Promise<number> => {
  const server: Server = createServer((sock) => sock.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(() => r())));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
};

const RECORD_ONLY_STEP: Partial<Record<EventEnvelope['type'], string>> = {
  JobStarted: 'start',
  ServerCreateRequested: 'recordCreateIntent',
  AnsibleStarted: 'startAnsible',
};

/** Timestamps appends and step starts per node; see the header for the definition. */
class DispatchClock {
  /** The node's latest append: when it was acked (null until the ack is seen) and whether a step has started since. */
  private readonly latest = new Map<string, { ackAt: number | null; dispatched: boolean }>();
  private readonly terminal = new Map<string, (type: string) => void>();
  samples: Array<{ step: string; ms: number }> = [];
  repolls = 0;
  startedBeforeAckSeen = 0;
  failures: string[] = [];

  /** Wraps the store's append on this instance only; src/ is untouched. */
  instrument(store: EventStore): void {
    const append = store.append.bind(store);
    store.append = async (streamId, events, o) => {
      const recordOnly = events[0] ? RECORD_ONLY_STEP[events[0].type] : undefined;
      if (recordOnly) this.stepStarted(recordOnly, streamId);
      const res = await append(streamId, events, o);
      if (!res.duplicate) this.latest.set(streamId, { ackAt: nowMs(), dispatched: false });
      const end = events.find((e) => e.type === 'ProvisionSucceeded' || e.type === 'ProvisionFailed');
      if (end) {
        if (end.type === 'ProvisionFailed') this.failures.push(`${streamId}: ${end.data.errorCode} ${end.data.errorMessage}`);
        this.terminal.get(streamId)?.(end.type);
        this.terminal.delete(streamId);
      }
      return res;
    };
  }

  /** The first step start after an ack is the dispatch; later ones on the same message are re-polls. */
  stepStarted(step: string, nodeId: string): void {
    const at = nowMs();
    const e = this.latest.get(nodeId);
    if (!e) return;
    if (e.dispatched) {
      this.repolls++;
      return;
    }
    e.dispatched = true;
    if (e.ackAt === null) this.startedBeforeAckSeen++;
    this.samples.push({ step, ms: e.ackAt === null ? 0 : at - e.ackAt });
  }

  whenTerminal(nodeId: string): Promise<string> {
    return new Promise((r) => this.terminal.set(nodeId, r));
  }

  reset(): void {
    this.samples = [];
    this.repolls = 0;
    this.startedBeforeAckSeen = 0;
    this.failures = [];
  }
}

const latencyRows = (label: string, samples: ReadonlyArray<{ step: string; ms: number }>): string[][] => {
  const row = (name: string, xs: number[]): string[] => [label, name, String(xs.length), percentile(xs, 50).toFixed(1), percentile(xs, 99).toFixed(1), Math.max(...xs).toFixed(1)];
  const steps = [...new Set(samples.map((s) => s.step))].sort();
  return [row('all steps', samples.map((s) => s.ms)), ...steps.map((st) => row(st, samples.filter((s) => s.step === st).map((s) => s.ms)))];
};

await runBench('Pressluft bench: saga orchestration (ZERO-LATENCY simulator, NO-OP Ansible runner)', async () => {
  const { n, rounds, latency, concurrency } = flags;
  const logger = benchLogger();
  const nats = await startBenchNats();
  const sim = await startSimulatorProcess({ actionDurationMs: 0 });
  const sshPort = await fakeSshd();
  const store = await EventStore.open(nats.url, { streamName: 'BENCH_SAGA', subjectPrefix: 'bench', duplicateWindowMs: 120_000, logger });
  onCleanup(() => store.close());
  const clock = new DispatchClock();
  clock.instrument(store);
  const saga = await benchSaga(store, sim, {
    logger,
    consumerName: 'bench-saga',
    concurrency,
    onBoundary: (b, step, nodeId) => {
      if (b === 'before-effect') clock.stepStarted(step, nodeId);
    },
  });
  await saga.start();
  onCleanup(() => saga.stop());
  const repo = new NodeRepository(store);

  process.stdout.write(
    'ZERO-LATENCY Hetzner simulator (actionDurationMs 0, own process, rate limit lifted); NO-OP Ansible runner; one saga worker in this process, ' +
      `concurrency ${concurrency}; nats-server and simulator on the same 2 cores.\n` +
      `load average before run: ${loadAverage()}\n\n`,
  );

  // Returns once the request is appended; `done` settles when the job is terminal. (Wrapped: an async function would flatten a returned promise.)
  const provision = async (tag: string, i: number): Promise<{ done: Promise<string> }> => {
    const nodeId = `${tag}_n${i}`;
    const done = clock.whenTerminal(nodeId);
    await handleCommand(
      repo,
      nodeId,
      { type: 'RequestProvision', nodeId, jobId: `${nodeId}-job`, spec: benchSpec(`${tag}-n${i}`, sshPort), policy: benchPolicy() },
      { actor: 'api:bench', causationId: 'bench', now: new Date().toISOString(), messageId: `provision:${nodeId}` },
    );
    return { done };
  };
  const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms).unref())]);

  // Warm-up, untimed: JIT, HTTP keep-alive, the consumer.
  const warm = await Promise.all(Array.from({ length: 20 }, (_, i) => provision('warm', i)));
  await withTimeout(Promise.all(warm.map((w) => w.done)), 60_000, 'warm-up');

  // Latency, uncontended: one provision at a time, so a sample is dispatch, not queueing behind other nodes.
  clock.reset();
  const latencyLoad = loadAverage();
  for (let i = 0; i < latency; i++) await withTimeout((await provision('lat', i)).done, 30_000, `latency provision ${i}`);
  const idle = { samples: clock.samples, repolls: clock.repolls, beforeAck: clock.startedBeforeAckSeen, failures: clock.failures };

  // Throughput: n provisions requested at once; done when the last job is terminal.
  const runs: Array<{ load: string; seconds: number; rate: number; submitS: number; failures: number; repolls: number; cpu: Record<string, number> }> = [];
  const pids = { 'nats-server': natsPid(nats.port), simulator: sim.pid };
  let loaded: Array<{ step: string; ms: number }> = [];
  for (let r = 1; r <= rounds; r++) {
    clock.reset();
    const load = loadAverage();
    const meter = cpuMeter(pids);
    const started = nowMs();
    const dones = await Promise.all(Array.from({ length: n }, (_, i) => provision(`t${r}`, i)));
    const submitS = (nowMs() - started) / 1000;
    await withTimeout(Promise.all(dones.map((d) => d.done)), 600_000, `throughput round ${r}`);
    const seconds = (nowMs() - started) / 1000;
    runs.push({ load, seconds, rate: n / seconds, submitS, failures: clock.failures.length, repolls: clock.repolls, cpu: meter() });
    loaded = loaded.concat(clock.samples);
    if (clock.failures.length > 0) process.stderr.write(`round ${r}: ${clock.failures.length} failed, e.g. ${clock.failures[0]}\n`);
  }

  const lat = idle.samples.map((s) => s.ms);
  const p99 = percentile(lat, 99);
  const rate = median(runs.map((x) => x.rate));

  process.stdout.write(
    `Step dispatch latency, ms (append ack -> next step started; see bench/saga.ts header). ` +
      `Uncontended: ${latency} provisions one at a time (load avg ${latencyLoad}); under load: during the ${n}-provision rounds (queueing included).\n` +
      `re-polls after nak: ${idle.repolls} uncontended; step starts seen before the ack: ${idle.beforeAck} (counted as 0 ms); failed provisions: ${idle.failures.length}\n\n`,
  );
  process.stdout.write(`${table(['phase', 'step', 'samples', 'p50', 'p99', 'max'], [...latencyRows('uncontended', idle.samples), ...latencyRows('under load', loaded)])}\n\n`);
  process.stdout.write(`Throughput: ${n} concurrent provisions, from the first request to the last terminal event\n\n`);
  process.stdout.write(
    `${table(
      ['round', 'load avg (1/5/15 min)', 'requests appended (s)', 'all terminal (s)', 'provisions/s', 'failed', 're-polls', 'CPU s: bench+saga / nats-server / simulator'],
      [
        ...runs.map((x, i) => [`${i + 1}`, x.load, x.submitS.toFixed(2), x.seconds.toFixed(2), fmt(x.rate, 1), String(x.failures), String(x.repolls),
          Object.values(x.cpu).map((c) => c.toFixed(1)).join(' / ')]),
        ['median', '', '', '', fmt(rate, 1), '', '', ''],
      ],
    )}\n\n`,
  );
  process.stdout.write(
    `${table(
      ['metric', 'measured', 'target', 'verdict'],
      [
        ['dispatch latency p50, uncontended (ms)', percentile(lat, 50).toFixed(1), '', ''],
        ['dispatch latency p99, uncontended (ms)', p99.toFixed(1), `<= ${P99_TARGET_MS}`, verdict(p99, P99_TARGET_MS, false)],
        [`orchestration throughput, ${n} concurrent (provisions/s, median)`, fmt(rate, 1), `>= ${THROUGHPUT_TARGET}`, verdict(rate, THROUGHPUT_TARGET)],
      ],
    )}\n`,
  );
  process.stdout.write(`\nload average after run: ${loadAverage()}\n`);
});
