/**
 * `npm run bench:cluster`: append and replay throughput of the event store on R1 (one server)
 * and R3 (a loopback 3-node cluster, test/support/nats-cluster.ts), each as a ratio against bare
 * JetStream on the same topology in the same run:
 * - append: EventStore.append (msgID + expected sequence, one subject per node) against a bare
 *   sync `js.publish` with the same headers;
 * - replay: EventStore.followRaw from position 1 to the end against a bare ordered-consumer drain;
 * - orchestration: `--provisions` requested at once through the real ProvisionSaga (one worker in
 *   this process, `--concurrency`), ZERO-LATENCY Hetzner simulator, NO-OP Ansible runner, as in
 *   bench/saga.ts; against the same number of provisions done as bare sync `js.publish` (msgID +
 *   expected seq), as many per provision as the saga appended (stream growth / provisions),
 *   sequential per node, `--concurrency` nodes at a time.
 */
import { createServer, type Server } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NodeConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';
import { handleCommand } from '../src/commands/command-handler.ts';
import { NodeRepository } from '../src/commands/node-repository.ts';
import { EventStore } from '../src/eventstore/event-store.ts';
import { toEnvelopes } from '../src/events/envelope.ts';
import { event } from '../src/events/node-events.ts';
import { startNatsCluster } from '../test/support/nats-cluster.ts';
import { ctx } from '../test/support/node-fixtures.ts';
import {
  benchLogger, benchPolicy, benchSpec, fmt, intFlag, loadAverage, median, nowMs, onCleanup, parseFlags, runBench, startBenchNats, startSimulatorProcess, table, tempDir,
  benchSaga,
} from './bench-support.ts';

const flags = parseFlags(z.object({ events: intFlag(2000), nodes: intFlag(50), runs: intFlag(3), provisions: intFlag(200), concurrency: intFlag(32) }));
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

/** Stands in for each node's sshd (the saga probes the port before Ansible); accepts and hangs up. As in bench/saga.ts, whose import would run that bench. */
const fakeSshd = async (): Promise<number> => {
  const server: Server = createServer((sock) => sock.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(() => r())));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
};

/** Resolves a node's promise when the saga appends its terminal event (wraps append on this instance only). */
const watchTerminal = (store: EventStore) => {
  const waiting = new Map<string, () => void>();
  const failures: string[] = [];
  const append = store.append.bind(store);
  store.append = async (streamId, events, o) => {
    const res = await append(streamId, events, o);
    const end = events.find((e) => e.type === 'ProvisionSucceeded' || e.type === 'ProvisionFailed');
    if (end) {
      if (end.type === 'ProvisionFailed') failures.push(`${streamId}: ${end.data.errorCode} ${end.data.errorMessage}`);
      waiting.get(streamId)?.();
      waiting.delete(streamId);
    }
    return res;
  };
  return { failures, whenTerminal: (nodeId: string) => new Promise<void>((r) => waiting.set(nodeId, r)) };
};


/** `count` provisions requested at once; resolves when every job is terminal. */
const provisionAll = async (repo: NodeRepository, terminal: ReturnType<typeof watchTerminal>, tag: string, count: number, sshPort: number): Promise<void> => {
  const dones = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const nodeId = `${tag}_n${i}`;
    const done = terminal.whenTerminal(nodeId);
    await handleCommand(
      repo,
      nodeId,
      { type: 'RequestProvision', nodeId, jobId: `${nodeId}-job`, spec: benchSpec(`${tag}-n${i}`, sshPort), policy: benchPolicy() },
      { actor: 'api:bench', causationId: 'bench', now: new Date().toISOString(), messageId: `provision:${nodeId}` },
    );
    return done;
  }));
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${tag}: not all terminal after 600 s`)), 600_000).unref());
  await Promise.race([Promise.all(dones), timeout]);
};

/** The bare baseline: `provisions` nodes, `appends` sync publishes each in sequence, `concurrency` nodes at a time; provisions/s. */
const orchestrateBare = async (target: NodeConnectionOptions, stream: string, prefix: string, run: string, appends: number): Promise<number> => {
  const nc = await connect(target);
  try {
    const js = jetstream(nc);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < flags.provisions; i = next++) {
        const node = `${run}-p${i}`;
        let seq = 0;
        for (let k = 0; k < appends; k++) {
          const ack = await js.publish(`${prefix}.node.${node}`, JSON.stringify({ events: decision(node) }), { msgID: `${run}-${i}-${k}`, expect: { lastSubjectSequence: seq, streamName: stream } });
          seq = ack.seq;
        }
      }
    };
    const t = nowMs();
    await Promise.all(Array.from({ length: flags.concurrency }, worker));
    return flags.provisions / ((nowMs() - t) / 1000);
  } finally {
    await nc.close();
  }
};

/** Each topology gets its own simulator (a fresh account), as bench/saga.ts does: sharing one made a provision hang on R3. */
const orchestrate = async (label: string, target: NodeConnectionOptions, replicas: number, sshPort: number): Promise<string[]> => {
  const sim = await startSimulatorProcess({ actionDurationMs: 0 });
  const open = (streamName: string, subjectPrefix: string) => EventStore.open(target, { streamName, subjectPrefix, duplicateWindowMs: 120_000, replicas, logger });
  const store = await open(`BENCH_SAGA_${label}`, `s${label.toLowerCase()}`);
  onCleanup(() => store.close());
  const bare = await open(`BENCH_SAGA_BARE_${label}`, `o${label.toLowerCase()}`);
  onCleanup(() => bare.close());
  const terminal = watchTerminal(store);
  const saga = await benchSaga(store, sim, { logger, consumerName: `bench-saga-${label.toLowerCase()}`, concurrency: flags.concurrency });
  await saga.start();
  onCleanup(() => saga.stop());
  const repo = new NodeRepository(store);
  await provisionAll(repo, terminal, `${label.toLowerCase()}-warm`, 10, sshPort); // untimed: JIT, keep-alive, the consumer
  const rows = { saga: [] as number[], bare: [] as number[], appends: [] as number[] };
  for (let r = 0; r < flags.runs; r++) {
    const before = await store.lastPosition();
    const t = nowMs();
    await provisionAll(repo, terminal, `${label.toLowerCase()}-r${r}`, flags.provisions, sshPort);
    rows.saga.push(flags.provisions / ((nowMs() - t) / 1000));
    rows.appends.push(((await store.lastPosition()) - before) / flags.provisions);
    rows.bare.push(await orchestrateBare(target, bare.streamName, `o${label.toLowerCase()}`, `r${r}`, Math.round(rows.appends.at(-1)!)));
  }
  if (terminal.failures.length > 0) process.stderr.write(`${label}: ${terminal.failures.length} provisions failed, e.g. ${terminal.failures[0]}\n`);
  const appends = median(rows.appends);
  return [label, fmt(appends, 2), fmt(median(rows.saga), 1), fmt(median(rows.bare), 1), `${(median(rows.saga) / median(rows.bare)).toFixed(2)}×`, String(terminal.failures.length)];
};

await runBench('pressluft event store and saga on R1 and R3 (loopback)', async () => {
  const r1 = await startBenchNats();
  const cluster = await startNatsCluster({ dir: await tempDir('cluster') });
  onCleanup(() => cluster.stop());
  const targets: Array<[string, NodeConnectionOptions, number]> = [['R1', { servers: [r1.url] }, 1], ['R3', { servers: cluster.urls.split(',') }, 3]];
  const rows: string[][] = [];
  for (const [label, target, replicas] of targets) rows.push(...(await measure(label, target, replicas)));
  process.stdout.write(`events ${flags.events} over ${flags.nodes} nodes, median of ${flags.runs} runs\n\n`);
  process.stdout.write(`${table(['topology', 'what', 'pressluft msgs/s', 'bare JetStream msgs/s', 'ratio'], rows)}\n\n`);

  const sshPort = await fakeSshd();
  const loadBefore = loadAverage();
  const orchestration: string[][] = [];
  for (const [label, target, replicas] of targets) orchestration.push(await orchestrate(label, target, replicas, sshPort));
  process.stdout.write(
    `orchestration: ${flags.provisions} provisions requested at once, saga concurrency ${flags.concurrency}, ZERO-LATENCY simulator, NO-OP Ansible runner, median of ${flags.runs} runs; ` +
      `bare: as many sync publishes per provision as the saga appended (rounded), sequential per node, ${flags.concurrency} nodes at a time\n` +
      `load average before: ${loadBefore}; after: ${loadAverage()}\n\n`,
  );
  process.stdout.write(`${table(['topology', 'appends/provision', 'saga provisions/s', 'bare JetStream provisions/s', 'ratio', 'failed'], orchestration)}\n`);
});
