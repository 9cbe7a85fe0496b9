/**
 * Event store benchmark: our append and our SQLite projection replay, each against the bare
 * JetStream operation on the same server, in the same run, as a ratio.
 *
 *   node --import tsx bench/eventstore.ts [--n 5000] [--rounds 3] [--aggregates 100] [--heap-nodes 10000]
 *
 * Targets (issue): append >= 0.85x bare js.publish; replay into SQLite >= 0.5x bare ordered-consumer drain.
 */
import { DeliverPolicy, jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { CommandContext } from '../src/commands/command-handler.ts';
import { toEnvelopes } from '../src/events/envelope.ts';
import { decide } from '../src/commands/node-decider.ts';
import type { NodeCommand } from '../src/commands/node-commands.ts';
import { foldDecisions } from '../src/commands/node-repository.ts';
import { encodeDecision } from '../src/events/event-codec.ts';
import type { EventEnvelope } from '../src/events/envelope.ts';
import { initialNodeState, type NodeState } from '../src/events/node-state.ts';
import { EventStore, READ_BATCH } from '../src/eventstore/event-store.ts';
import type { Logger } from '../src/logging/logger.ts';
import { Projector } from '../src/projections/projector.ts';
import { ReadModelQueries } from '../src/projections/read-model-queries.ts';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { z } from 'zod';
import {
  benchLogger, benchPolicy, cpuMeter, natsPid, benchSpec, fmt, intFlag, loadAverage, median, nowMs, onCleanup, parseFlags, runBench, startBenchNats, table, tempDir, verdict,
} from './bench-support.ts';

const flags = parseFlags(
  z.object({
    n: intFlag(5000),
    rounds: intFlag(3),
    aggregates: intFlag(100),
    // 0 skips the memory measurement.
    'heap-nodes': intFlag(10_000, 0),
  }),
);

const APPEND_TARGET = 0.85;
const REPLAY_TARGET = 0.5;

/** One message to append: the same envelopes (and bytes) go through both paths. */
interface Planned {
  nodeId: string;
  messageId: string;
  envelopes: EventEnvelope[];
  bytes: Uint8Array;
}

/**
 * One node's realistic life, one decision per message: a provision runs start to success, then a
 * re-provision starts over. Events come from the real decider and toEnvelopes, so sizes and shapes are real.
 */
const lifecycle = (nodeId: string, s: NodeState, k: number): NodeCommand => {
  const job = s.currentJobId ? s.jobs[s.currentJobId] : undefined;
  const jobId = `${nodeId}-j${k}`;
  const ref = job ? { jobId: job.jobId, attempt: Math.max(1, job.attempt) } : { jobId, attempt: 1 };
  if (!s.nodeId) return { type: 'RequestProvision', nodeId, jobId, spec: benchSpec(nodeId.toLowerCase().replace(/_/g, '-')), policy: benchPolicy() };
  if (!job || job.status === 'succeeded') return { type: 'RequestReprovision', nodeId, jobId, policy: benchPolicy() };
  if (job.status === 'queued') return { type: 'StartAttempt', jobId: job.jobId };
  const p = job.progress;
  if (!p.sshKey) return { type: 'RecordSshKey', ...ref, keyId: '4711', fingerprint: 'b7:2f:9c:11:04:aa:3e:5d:60:71:82:93:a4:b5:c6:d7' };
  if (!p.serverCreateRequested) return { type: 'RecordServerCreateIntent', ...ref, serverName: s.spec!.name, labels: { 'pressluft/node-id': nodeId, 'pressluft/job-id': job.jobId } };
  if (!p.server) return { type: 'RecordServerCreated', ...ref, serverId: '1000001', actionIds: ['2000001', '2000002'], adopted: false };
  for (const actionId of p.server.actionIds) {
    if (p.actions[actionId]?.status !== 'success') return { type: 'RecordActionPolled', ...ref, actionId, status: 'success', progress: 100, errorCode: null };
  }
  if (!p.ready) return { type: 'RecordServerReady', ...ref, serverId: p.server.serverId, ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' };
  if (!p.ansibleStartedAt) return { type: 'RecordAnsibleStarted', ...ref, playbook: 'ansible/playbooks/provision.yml' };
  return {
    type: 'RecordAnsibleResult',
    ...ref,
    result: {
      ok: true, errorCode: null, retryable: false, exitCode: 0, durationMs: 41_000, finishedAt: new Date().toISOString(),
      recap: { ok: 23, changed: 9, failures: 0, unreachable: 0, skipped: 2, rescued: 0, ignored: 0 },
      outputTail: 'PLAY RECAP *********************************************************************\nnode : ok=23 changed=9 unreachable=0 failed=0 skipped=2 rescued=0 ignored=0',
    },
  };
};

/** `n` messages over `aggregates` nodes, round-robin, so message i goes to node i % aggregates. */
const plan = (tag: string, n: number, aggregates: number): Planned[] => {
  const states = Array.from({ length: aggregates }, () => initialNodeState());
  const out: Planned[] = [];
  for (let i = 0; i < n; i++) {
    const a = i % aggregates;
    const nodeId = `${tag}_n${a}`;
    const s = states[a]!;
    const cmd = lifecycle(nodeId, s, i);
    const ctx: CommandContext = { actor: 'saga', causationId: String(i), now: new Date().toISOString(), messageId: `${tag}:${i}` };
    const envelopes = toEnvelopes(nodeId, decide(cmd, s), ctx);
    states[a] = foldDecisions([{ position: i + 1, subject: '', events: envelopes }], s);
    out.push({ nodeId, messageId: ctx.messageId, envelopes, bytes: encodeDecision(envelopes) });
  }
  return out;
};

type Publish = (m: Planned, expectedVersion: number) => Promise<number>;

/**
 * Appends the plan and returns msgs/s. Sync awaits each publish; `window` > 1 keeps that many in flight.
 * The window never exceeds the aggregate count, so one window holds each node at most once and every
 * expectation is the position acked in an earlier window, exactly as a real appender would know it.
 */
const appendRate = async (msgs: readonly Planned[], window: number, publish: Publish): Promise<number> => {
  const versions = new Map<string, number>();
  const started = nowMs();
  for (let i = 0; i < msgs.length; i += window) {
    const slice = msgs.slice(i, i + window);
    const acks = await Promise.all(slice.map((m) => publish(m, versions.get(m.nodeId) ?? 0)));
    slice.forEach((m, j) => versions.set(m.nodeId, acks[j]!));
  }
  return msgs.length / ((nowMs() - started) / 1000);
};

/** The baseline: the same bytes, subject, msgID and expected last subject sequence, straight to js.publish. */
const barePublisher = (js: JetStreamClient, streamName: string, subjectPrefix: string): Publish => async (m, expectedVersion) => {
  const ack = await js.publish(`${subjectPrefix}.node.${m.nodeId}`, m.bytes, { msgID: m.messageId, expect: { lastSubjectSequence: expectedVersion, streamName } });
  return ack.seq;
};

const ourPublisher = (store: EventStore): Publish => async (m, expectedVersion) =>
  (await store.append(m.nodeId, m.envelopes, { expectedVersion, messageId: m.messageId })).position;

/** The baseline reader: an ordered consumer over the whole stream, configured as the projector's (EventStore.followRaw), doing nothing per message. */
const bareDrainRate = async (store: EventStore, js: JetStreamClient): Promise<number> => {
  const last = await store.lastPosition();
  const started = nowMs();
  const consumer = await js.consumers.get(store.streamName, { filter_subjects: store.allSubjects, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 1 });
  const messages = await consumer.consume({ max_messages: READ_BATCH });
  let count = 0;
  for await (const m of messages) {
    count++;
    if (m.seq >= last) break;
  }
  await messages.close();
  return count / ((nowMs() - started) / 1000);
};

/**
 * The same drain with a callback instead of the async iterator: the delivery mode EventStore.followRaw
 * uses, so the baseline does not pay for an iterator that our path does not use either.
 */
const bareCallbackDrainRate = async (store: EventStore, js: JetStreamClient): Promise<number> => {
  const last = await store.lastPosition();
  const started = nowMs();
  const consumer = await js.consumers.get(store.streamName, { filter_subjects: store.allSubjects, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 1 });
  let count = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const messages = await consumer.consume({
    max_messages: READ_BATCH,
    callback: (m) => {
      count++;
      if (m.seq >= last) done();
    },
  });
  await finished;
  const elapsed = nowMs() - started;
  await messages.close();
  return count / (elapsed / 1000);
};

/** Our replay: a Projector from position 1 into a fresh SQLite file, timed from start() until it has the last position. */
const projectorReplayRate = async (store: EventStore, dbPath: string, logger: Logger): Promise<number> => {
  const last = await store.lastPosition();
  const projector = new Projector(store, { dbPath, logger });
  const started = nowMs();
  projector.start();
  const ok = await projector.waitFor(last, 600_000);
  const elapsed = nowMs() - started;
  await projector.stop();
  projector.close();
  if (!ok) throw new Error(`projector did not reach ${last}: ${projector.error?.message ?? 'timeout'}`);
  return last / (elapsed / 1000);
};

/** A full collection, so heap figures are live objects only. */
const collectGarbage = (): void => {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
};

/** One finished provision per node (10 decisions each: request to success), then a cold replay; heap held by the projector. */
const projectorHeap = async (store: EventStore, js: JetStreamClient, nodes: number, dbPath: string, logger: Logger): Promise<string[][]> => {
  await appendRate(plan('heap', 10 * nodes, nodes), 100, ourPublisher(store));
  const last = await store.lastPosition();
  // The fleet's shape: every batch touches thousands of nodes once each, so per-node work dominates.
  // CPU seconds of this process per path: steadier than msgs/s when other work loads the machine.
  const cpuOf = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const c = process.cpuUsage();
    const r = await f();
    const d = process.cpuUsage(c);
    return [r, (d.user + d.system) / 1e6];
  };
  const [iterator, iteratorCpu] = await cpuOf(() => bareDrainRate(store, js));
  const [callback, callbackCpu] = await cpuOf(() => bareCallbackDrainRate(store, js));
  const drain = { iterator, callback };
  collectGarbage();
  const before = process.memoryUsage();
  const projector = new Projector(store, { dbPath, logger });
  const started = nowMs();
  const [, oursCpu] = await cpuOf(async () => {
    projector.start();
    if (!(await projector.waitFor(last, 600_000))) throw new Error(`projector did not reach ${last}`);
  });
  const seconds = (nowMs() - started) / 1000;
  await projector.stop();
  collectGarbage();
  const after = process.memoryUsage();
  const cache = projector.cachedStates;
  const statuses = new ReadModelQueries(projector.db).countJobsByStatus();
  projector.close();
  const mb = (b: number): string => (b / 1048576).toFixed(1);
  return [
    ['messages replayed (whole stream)', fmt(last)],
    ['replay time, s', seconds.toFixed(1)],
    ['replay msgs/s: Projector / bare drain (iterator) / bare drain (callback)', `${fmt(last / seconds)} / ${fmt(drain.iterator)} / ${fmt(drain.callback)}`],
    ['ratio vs iterator / vs callback drain', `${(last / seconds / drain.iterator).toFixed(2)} / ${(last / seconds / drain.callback).toFixed(2)}`],
    ['CPU s of the bench process: Projector / bare drain (iterator) / bare drain (callback)', `${oursCpu.toFixed(2)} / ${iteratorCpu.toFixed(2)} / ${callbackCpu.toFixed(2)}`],
    ['CPU ratio (drain CPU / Projector CPU) vs iterator / vs callback', `${(iteratorCpu / oursCpu).toFixed(2)} / ${(callbackCpu / oursCpu).toFixed(2)}`],
    ['jobs by status', Object.entries(statuses).map(([k, v]) => `${k} ${v}`).join(', ')],
    ['heap used before / after replay, MB (after a full GC)', `${mb(before.heapUsed)} / ${mb(after.heapUsed)}`],
    ['heap held by the projector after replay, MB', mb(after.heapUsed - before.heapUsed)],
    ['RSS of the bench process before / after, MB', `${mb(before.rss)} / ${mb(after.rss)}`],
    ['folded states cached: nodes / characters of JSON', `${fmt(cache.nodes)} / ${fmt(cache.chars)}`],
  ];
};

await runBench('Pressluft bench: event store append and replay', async () => {
  const { n, rounds, aggregates } = flags;
  const window = Math.min(100, aggregates);
  const logger = benchLogger();
  const nats = await startBenchNats();
  const dbDir = await tempDir('sqlite');
  // Two streams with the same config, one per path, so neither sees the other's messages or subjects.
  const ours = await EventStore.open(nats.url, { streamName: 'BENCH_OURS', subjectPrefix: 'ours', duplicateWindowMs: 120_000, logger });
  // Closed before nats stops (cleanups run last-first): an open connection would reconnect forever.
  onCleanup(() => ours.close());
  const bare = await EventStore.open(nats.url, { streamName: 'BENCH_BARE', subjectPrefix: 'bare', duplicateWindowMs: 120_000, logger });
  onCleanup(() => bare.close());
  // The baseline talks to JetStream directly, on a connection of its own.
  const rawNc = await connect({ servers: nats.url });
  onCleanup(() => rawNc.drain());
  const rawJs = jetstream(rawNc);
  const publishOurs = ourPublisher(ours);
  const publishBare = barePublisher(rawJs, bare.streamName, 'bare');

  const sample = plan('sample', 2 * aggregates * 11, aggregates);
  const sizes = sample.map((m) => m.bytes.length);
  process.stdout.write(
    `n=${n} per path and mode, rounds=${rounds}, aggregates=${aggregates} (round-robin, one subject each), async window=${window}\n` +
      `payload: real envelopes (decide + toEnvelopes), one provision lifecycle after another; bytes min ${Math.min(...sizes)}, median ${median(sizes)}, max ${Math.max(...sizes)}\n` +
      `load average before run: ${loadAverage()}\n\n`,
  );

  // Warm-up, untimed: JIT, connection buffers and the stream files get going before either path is measured.
  const warm = plan('warm', Math.min(n, 1000), aggregates);
  await appendRate(warm, 1, publishBare);
  await appendRate(warm, 1, publishOurs);

  const rows: string[][] = [];
  const rate = { syncOurs: [] as number[], syncBare: [] as number[], asyncOurs: [] as number[], asyncBare: [] as number[] };
  for (let r = 1; r <= rounds; r++) {
    const load = loadAverage();
    // Fresh nodes per round and mode; both paths append the very same plan. Order alternates to spread drift in machine load.
    const syncPlan = plan(`r${r}s`, n, aggregates);
    const asyncPlan = plan(`r${r}a`, n, aggregates);
    const order = r % 2 === 1 ? (['bare', 'ours'] as const) : (['ours', 'bare'] as const);
    for (const who of order) {
      if (who === 'bare') rate.syncBare.push(await appendRate(syncPlan, 1, publishBare));
      else rate.syncOurs.push(await appendRate(syncPlan, 1, publishOurs));
    }
    for (const who of order) {
      if (who === 'bare') rate.asyncBare.push(await appendRate(asyncPlan, window, publishBare));
      else rate.asyncOurs.push(await appendRate(asyncPlan, window, publishOurs));
    }
    const i = r - 1;
    rows.push([`append ${r}`, load, fmt(rate.syncBare[i]!), fmt(rate.syncOurs[i]!), (rate.syncOurs[i]! / rate.syncBare[i]!).toFixed(2),
      fmt(rate.asyncBare[i]!), fmt(rate.asyncOurs[i]!), (rate.asyncOurs[i]! / rate.asyncBare[i]!).toFixed(2)]);
  }
  // Each round is a paired comparison (same machine state), so the verdict uses the median of the per-round ratios.
  const pairedRatio = (ours: readonly number[], bare: readonly number[]): number => median(ours.map((o, i) => o / bare[i]!));
  const syncRatio = pairedRatio(rate.syncOurs, rate.syncBare);
  const asyncRatio = pairedRatio(rate.asyncOurs, rate.asyncBare);
  rows.push(['append median', '', fmt(median(rate.syncBare)), fmt(median(rate.syncOurs)), syncRatio.toFixed(2), fmt(median(rate.asyncBare)), fmt(median(rate.asyncOurs)), asyncRatio.toFixed(2)]);
  process.stdout.write('Append, msgs/s (sync: await each publish; async: window of in-flight publishes, one per aggregate, labelled separately)\n\n');
  process.stdout.write(`${table(['round', 'load avg (1/5/15 min)', 'sync bare js.publish', 'sync EventStore.append', 'sync ratio', `async(${window}) bare`, `async(${window}) ours`, 'async ratio'], rows)}\n\n`);

  const total = await ours.lastPosition();
  const pid = natsPid(nats.port);
  const replay = { bare: [] as number[], callback: [] as number[], ours: [] as number[] };
  const replayRows: string[][] = [];
  const orders = [['bare', 'callback', 'ours'], ['ours', 'bare', 'callback'], ['callback', 'ours', 'bare']] as const;
  for (let r = 1; r <= rounds; r++) {
    const load = loadAverage();
    // CPU seconds per side show which process is the bottleneck.
    const cpu: Record<string, string> = {};
    for (const who of orders[(r - 1) % orders.length]!) {
      const meter = cpuMeter({ nats: pid });
      if (who === 'bare') replay.bare.push(await bareDrainRate(ours, rawJs));
      else if (who === 'callback') replay.callback.push(await bareCallbackDrainRate(ours, rawJs));
      else replay.ours.push(await projectorReplayRate(ours, join(dbDir, `replay-${r}.sqlite`), logger));
      cpu[who] = Object.values(meter()).map((c) => c.toFixed(2)).join(' / ');
    }
    const i = r - 1;
    replayRows.push([`replay ${r}`, load, fmt(replay.bare[i]!), fmt(replay.callback[i]!), fmt(replay.ours[i]!),
      (replay.ours[i]! / replay.bare[i]!).toFixed(2), (replay.ours[i]! / replay.callback[i]!).toFixed(2), cpu.bare!, cpu.ours!]);
  }
  const replayRatio = pairedRatio(replay.ours, replay.bare);
  const callbackRatio = pairedRatio(replay.ours, replay.callback);
  replayRows.push(['replay median', '', fmt(median(replay.bare)), fmt(median(replay.callback)), fmt(median(replay.ours)), replayRatio.toFixed(2), callbackRatio.toFixed(2), '', '']);
  process.stdout.write(`Replay of the whole BENCH_OURS stream (${total} messages, ${aggregates * 2 * rounds} nodes), msgs/s\n\n`);
  process.stdout.write(`${table(['round', 'load avg (1/5/15 min)', 'bare drain (iterator)', 'bare drain (callback)', 'Projector into fresh SQLite', 'ratio', 'ratio vs callback', 'CPU s bare: bench / nats', 'CPU s ours: bench / nats'], replayRows)}\n\n`);

  process.stdout.write(
    `${table(
      ['metric', 'ratio (median)', 'target', 'verdict'],
      [
        ['sync append: EventStore.append / bare js.publish', syncRatio.toFixed(2), `>= ${APPEND_TARGET}`, verdict(syncRatio, APPEND_TARGET)],
        [`async(${window}) append (informational)`, asyncRatio.toFixed(2), `(>= ${APPEND_TARGET})`, verdict(asyncRatio, APPEND_TARGET)],
        ['replay: Projector into SQLite / bare drain', replayRatio.toFixed(2), `>= ${REPLAY_TARGET}`, verdict(replayRatio, REPLAY_TARGET)],
        ['replay: Projector into SQLite / bare callback drain', callbackRatio.toFixed(2), `>= ${REPLAY_TARGET}`, verdict(callbackRatio, REPLAY_TARGET)],
      ],
    )}\n`,
  );
  if (flags['heap-nodes'] > 0) {
    const heapStore = await EventStore.open(nats.url, { streamName: 'BENCH_HEAP', subjectPrefix: 'heap', duplicateWindowMs: 120_000, logger });
    onCleanup(() => heapStore.close());
    const rows = await projectorHeap(heapStore, rawJs, flags['heap-nodes'], join(dbDir, 'heap.sqlite'), logger);
    process.stdout.write(`\nProjector memory: ${fmt(flags['heap-nodes'])} nodes, one finished provision each, replayed from position 1\n\n${table(['what', 'value'], rows)}\n`);
  }
  process.stdout.write(`\nload average after run: ${loadAverage()}\n`);
});
