/**
 * `npm run bench:cluster`: append and replay throughput of the event store on R1 (one server)
 * and R3 (a loopback 3-node cluster, test/support/nats-cluster.ts), each as a ratio against bare
 * JetStream on the same topology in the same run:
 * - append: EventStore.append (msgID + expected sequence, one subject per node) against a bare
 *   sync `js.publish` with the same headers;
 * - replay: EventStore.followRaw from position 1 to the end against a bare ordered-consumer drain.
 * Orchestration (the saga) is not measured here: see "R1 vs R3" in docs/benchmarks.md.
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, type NodeConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';
import { EventStore } from '../src/eventstore/event-store.ts';
import { toEnvelopes } from '../src/events/envelope.ts';
import { event } from '../src/events/node-events.ts';
import { startNatsCluster } from '../test/support/nats-cluster.ts';
import { ctx } from '../test/support/node-fixtures.ts';
import { benchLogger, benchPolicy, benchSpec, fmt, intFlag, median, nowMs, onCleanup, parseFlags, runBench, startBenchNats, table, tempDir } from './bench-support.ts';

const flags = parseFlags(z.object({ events: intFlag(2000), nodes: intFlag(50), runs: intFlag(3) }));
const logger = benchLogger();

const decision = (nodeId: string) =>
  toEnvelopes(nodeId, [event('ProvisionRequested', { nodeId, jobId: `${nodeId}-j`, ...benchSpec(nodeId.toLowerCase()), maxAttempts: 3, policy: benchPolicy(), reprovision: false })], ctx());

/** Appends `events` decisions round-robin over `nodes` subjects, one at a time; msgs/s. */
const appendStore = async (store: EventStore, run: string): Promise<number> => {
  const versions = new Map<string, number>();
  const t = nowMs();
  for (let i = 0; i < flags.events; i++) {
    const node = `${run}-n${i % flags.nodes}`;
    const ack = await store.append(node, decision(node), { expectedVersion: versions.get(node) ?? 0, messageId: `${run}-${i}` });
    versions.set(node, ack.position);
  }
  return flags.events / ((nowMs() - t) / 1000);
};

const appendBare = async (target: NodeConnectionOptions, stream: string, prefix: string, run: string): Promise<number> => {
  const nc = await connect(target);
  try {
    const js = jetstream(nc);
    const versions = new Map<string, number>();
    const t = nowMs();
    for (let i = 0; i < flags.events; i++) {
      const node = `${run}-b${i % flags.nodes}`;
      const subject = `${prefix}.node.${node}`;
      const ack = await js.publish(subject, JSON.stringify({ events: decision(node) }), { msgID: `${run}-bare-${i}`, expect: { lastSubjectSequence: versions.get(node) ?? 0, streamName: stream } });
      versions.set(node, ack.seq);
    }
    return flags.events / ((nowMs() - t) / 1000);
  } finally {
    await nc.close();
  }
};

const replayStore = async (store: EventStore): Promise<number> => {
  const last = await store.lastPosition();
  const ac = new AbortController();
  const t = nowMs();
  let n = 0;
  await store.followRaw(1, (b) => {
    n += b.length;
    if (b[b.length - 1]!.position >= last) ac.abort();
  }, { batchSize: 512, signal: ac.signal });
  return n / ((nowMs() - t) / 1000);
};

const replayBare = async (target: NodeConnectionOptions, stream: string): Promise<number> => {
  const nc = await connect(target);
  try {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream);
    const t = nowMs();
    let n = 0;
    const messages = await consumer.consume({ max_messages: 4096 });
    for await (const m of messages) {
      n++;
      if (m.info.pending === 0) break;
    }
    return n / ((nowMs() - t) / 1000);
  } finally {
    await nc.close();
  }
};

const measure = async (label: string, target: NodeConnectionOptions, replicas: number): Promise<string[][]> => {
  const stream = `BENCH_${label}`;
  const prefix = `b${label.toLowerCase()}`;
  const store = await EventStore.open(target, { streamName: stream, subjectPrefix: prefix, duplicateWindowMs: 120_000, replicas, logger });
  onCleanup(() => store.close());
  const rows = { append: [] as number[], appendBare: [] as number[], replay: [] as number[], replayBare: [] as number[] };
  for (let r = 0; r < flags.runs; r++) {
    rows.appendBare.push(await appendBare(target, stream, prefix, `r${r}`));
    rows.append.push(await appendStore(store, `r${r}`));
    rows.replayBare.push(await replayBare(target, stream));
    rows.replay.push(await replayStore(store));
  }
  const line = (what: string, ours: number[], bare: number[]): string[] => [label, what, fmt(median(ours)), fmt(median(bare)), `${(median(ours) / median(bare)).toFixed(2)}×`];
  return [line('append (sync, msgID + expected seq)', rows.append, rows.appendBare), line('replay (followRaw vs ordered drain)', rows.replay, rows.replayBare)];
};

await runBench('pressluft event store on R1 and R3 (loopback)', async () => {
  const r1 = await startBenchNats();
  const rows = await measure('R1', { servers: [r1.url] }, 1);
  const cluster = await startNatsCluster({ dir: await tempDir('cluster') });
  onCleanup(() => cluster.stop());
  rows.push(...(await measure('R3', { servers: cluster.urls.split(',') }, 3)));
  process.stdout.write(`events ${flags.events} over ${flags.nodes} nodes, median of ${flags.runs} runs\n\n`);
  process.stdout.write(`${table(['topology', 'what', 'pressluft msgs/s', 'bare JetStream msgs/s', 'ratio'], rows)}\n`);
});
