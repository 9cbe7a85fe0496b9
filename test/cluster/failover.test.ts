import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { freeLoopbackPort } from '../../src/eventstore/nats-process.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { startHetznerSimulator, type HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { fixture, spawnCli, type Running } from '../app/serve-harness.ts';
import { cleanReplay } from '../support/clean-replay.ts';
import { startNatsCluster, type NatsCluster } from '../support/nats-cluster.ts';
import { fakeSshd } from '../support/saga-harness.ts';
import { captureLogger } from '../support/silent-logger.ts';

/**
 * Issue 13.3: pressluft on a 3-node nats-server cluster (R3 stream and consumers) with 2 api and
 * 2 worker processes, each a real `pressluft serve` child with its own data dir, connected with
 * NATS_URL (all three servers) and the app user of the embedded server's user model. Mid-run the
 * stream's leader server and one worker are killed with SIGKILL; the leader comes back later on
 * its own store.
 */
const PROVISIONS = 100;
const CLIENTS = 6;
const TERMINAL_BOUND_MS = Number(process.env.FAILOVER_BOUND_MS ?? 240_000);
const STREAM = 'PRESSLUFT_EVENTS';
const TOKEN = 'cluster-failover-test-token-0123456789';
// One key for every worker's sealed SSH key file (docs/operations.md, "Several hosts").
const SECRET_KEY = 'a'.repeat(64);

const { logger } = captureLogger();
const t0 = Date.now();
const trace = (msg: string): void => void process.stderr.write(`[failover +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let cluster: NatsCluster;
let sim: HetznerSimulator;
let sshd: { port: number; close(): Promise<void> };
const processes: Running[] = [];
const warnings: string[] = [];

const env = (name: string, role: 'api' | 'worker', port: number): NodeJS.ProcessEnv => ({
  PRESSLUFT_DATA_DIR: join(dir, name),
  PRESSLUFT_ROLE: role,
  PRESSLUFT_PORT: String(port),
  PRESSLUFT_API_TOKEN: TOKEN,
  PRESSLUFT_LOG_LEVEL: 'warn',
  PRESSLUFT_SECRET_KEY: SECRET_KEY,
  NATS_URL: cluster.urls,
  NATS_USER: cluster.credentials!.app.user,
  NATS_PASSWORD: cluster.credentials!.app.password,
  PRESSLUFT_STREAM_REPLICAS: '3',
  PRESSLUFT_PLAYBOOK: fixture('provision-local.yml'),
  PRESSLUFT_ACK_WAIT_MS: '3000',
  PRESSLUFT_BACKOFF_MS: '500',
  PRESSLUFT_WORKER_CONCURRENCY: '8',
  HCLOUD_ENDPOINT: sim.url,
  HCLOUD_TOKEN: sim.token,
});

const startApi = async (name: string): Promise<{ running: Running; base: string; dataDir: string }> => {
  const port = await freeLoopbackPort();
  const running = await spawnCli(['serve'], env(name, 'api', port), /API at (http:\/\/\S+);/, 90_000);
  processes.push(running);
  return { running, base: running.match[1]!, dataDir: join(dir, name) };
};

const startWorker = async (name: string): Promise<Running> => {
  const running = await spawnCli(['serve'], env(name, 'worker', 0), /API at \(none: worker role\)/, 90_000);
  processes.push(running);
  return running;
};

/** On a failure, every process's whole output is kept for the post-mortem (the temp dir is removed). */
const keepOutputs = async (): Promise<void> => {
  const logs = await mkdtemp(join(tmpdir(), 'pressluft-failover-logs-'));
  for (const p of processes) await writeFile(join(logs, `${p.pid}.log`), p.output());
  await writeFile(join(logs, 'nats-server.log'), warnings.join('\n'));
  trace(`process outputs kept in ${logs}`);
};

const api = (base: string, path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });

interface Acknowledged {
  name: string;
  nodeId: string;
  jobId: string;
  position: number;
}

/** POST until 202; the idempotency key makes a retry after a lost answer the same create. */
const createNode = async (base: string, name: string, retries: { count: number; statuses: Record<string, number> }): Promise<Acknowledged> => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let status = 'network error';
    try {
      const res = await api(base, '/v1/nodes', { method: 'POST', headers: { 'idempotency-key': `create-${name}` }, body: JSON.stringify({ name, serverType: 'cx22', location: 'fsn1', sshPort: sshd.port }) });
      if (res.status === 202) return { name, ...((await res.json()) as { nodeId: string; jobId: string; position: number }) };
      status = `${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.status < 500 && res.status !== 429) throw new Error(`create ${name}: ${status}`);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
    retries.count++;
    retries.statuses[status] = (retries.statuses[status] ?? 0) + 1;
    if (Date.now() > deadline) throw new Error(`create ${name}: no 202 within 60 s (last: ${status})`);
    await sleep(200);
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-failover-'));
  cluster = await startNatsCluster({
    dir: join(dir, 'nats'),
    auth: true,
    onLog: (member, level, line) => (level === 'warn' || level === 'error') && warnings.push(`${member} ${line}`),
  });
  trace(`nats cluster up: ${cluster.urls}`);
  sim = await startHetznerSimulator({ actionDurationMs: 200 });
  sshd = await fakeSshd();
}, 120_000);

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
  await cluster?.stop();
  await sim?.close();
  await sshd?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pressluft on a 3-node NATS cluster', () => {
  it(`loses no acknowledged event, buys no duplicate server and finishes every job through a kill -9 of the stream leader and of a worker (${PROVISIONS} provisions)`, { timeout: 480_000 }, async () => {
    const apis = [await startApi('api-1'), await startApi('api-2')];
    const workers = [await startWorker('worker-1')];
    // A second host's worker gets the same sealed SSH key (copied with the data dir's ssh/ folder, PRESSLUFT_SECRET_KEY the same).
    await mkdir(join(dir, 'worker-2'), { recursive: true, mode: 0o700 });
    await cp(join(dir, 'worker-1', 'ssh'), join(dir, 'worker-2', 'ssh'), { recursive: true });
    workers.push(await startWorker('worker-2'));
    trace('2 api and 2 worker processes ready');

    const acknowledged: Acknowledged[] = [];
    const retries = { count: 0, statuses: {} as Record<string, number> };
    let next = 0;
    const tLoad = Date.now();
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = next++; i < PROVISIONS; i = next++) {
        acknowledged.push(await createNode(apis[(i + c) % 2]!.base, `failover-node-${i}`, retries));
        await sleep(50);
      }
    });
    const loading = Promise.all(clients);

    const until = async (n: number): Promise<void> => {
      while (acknowledged.length < n) await sleep(50);
    };
    await until(20);
    const leader = await cluster.streamLeader(STREAM);
    await cluster.servers[leader]!.kill();
    const tLeaderKilled = Date.now();
    trace(`kill -9 of stream leader ${cluster.names[leader]} at ${acknowledged.length} acknowledged`);
    await until(45);
    process.kill(workers[0]!.pid, 'SIGKILL');
    await workers[0]!.exited;
    trace(`kill -9 of worker-1 at ${acknowledged.length} acknowledged`);
    await until(60);
    await sleep(Math.max(0, 5000 - (Date.now() - tLeaderKilled)));
    await cluster.servers[leader]!.restart();
    trace(`restarted ${cluster.names[leader]} on its store at ${acknowledged.length} acknowledged; new leader ${cluster.names[await cluster.streamLeader(STREAM)]}`);
    await loading;
    trace(`all ${PROVISIONS} acknowledged after ${Date.now() - tLoad} ms, ${retries.count} retried POSTs: ${JSON.stringify(retries.statuses)}`);
    expect(new Set(acknowledged.map((a) => a.name)).size).toBe(PROVISIONS);

    // Every job ends, succeeded, within the bound: asked of both api processes in turn.
    const statuses = new Map<string, string>();
    const deadline = Date.now() + TERMINAL_BOUND_MS;
    for (let round = 0; Date.now() < deadline && statuses.size < PROVISIONS; round++) {
      for (const a of acknowledged) {
        if (statuses.has(a.jobId)) continue;
        const res = await api(apis[round % 2]!.base, `/v1/jobs/${a.jobId}`).catch(() => null);
        const job = res?.ok ? ((await res.json()) as { status: string }) : null;
        if (job && ['succeeded', 'failed', 'cancelled'].includes(job.status)) statuses.set(a.jobId, job.status);
      }
      await sleep(500);
    }
    trace(`${statuses.size} of ${PROVISIONS} jobs terminal after ${Date.now() - tLoad} ms from the first POST`);
    if (statuses.size < PROVISIONS) await keepOutputs();
    expect(acknowledged.filter((a) => !statuses.has(a.jobId)).map((a) => a.name)).toEqual([]);
    expect([...statuses.values()].filter((s) => s !== 'succeeded')).toEqual([]);

    // 0 duplicate servers: exactly one per node at the provider.
    const perName = new Map<string, number>();
    for (const s of sim.admin.snapshot().servers) perName.set(s.name, (perName.get(s.name) ?? 0) + 1);
    expect(acknowledged.filter((a) => perName.get(a.name) !== 1).map((a) => `${a.name}: ${perName.get(a.name) ?? 0}`)).toEqual([]);
    expect(perName.size).toBe(PROVISIONS);

    // 0 acknowledged events lost: every acknowledged position holds its create, on whichever server answers now.
    const nc = await connect(cluster.as('operator'));
    try {
      const jsm = await jetstreamManager(nc);
      for (const a of acknowledged) {
        const m = await jsm.direct.getMessage(STREAM, { seq: a.position });
        expect(m?.subject, `position ${a.position}`).toBe(`pressluft.node.${a.nodeId}`);
        const text = new TextDecoder().decode(m!.data);
        expect(text).toContain('ProvisionRequested');
        expect(text).toContain(a.jobId);
      }
      const { state, config, cluster: placement } = await jsm.streams.info(STREAM);
      // No hole either: every position from 1 to the end is there.
      expect(state.messages).toBe(state.last_seq);
      expect(config.num_replicas).toBe(3);
      expect(placement?.replicas?.every((r) => r.current)).toBe(true);
      expect((await jsm.consumers.info(STREAM, 'pressluft-saga')).config.num_replicas).toBe(3);
    } finally {
      await nc.close();
    }

    // Each api process's read model equals a clean replay of the whole log.
    const store = await EventStore.open(cluster.as('app'), { streamName: STREAM, subjectPrefix: 'pressluft', duplicateWindowMs: 600_000, replicas: 3, logger });
    try {
      const last = await store.lastPosition();
      const expected = await cleanReplay(store, { dir, name: 'clean-replay', logger });
      for (const a of apis) {
        // Caught up: its checkpoint reaches the end of the log, then it stops cleanly and its file is read.
        const caughtUp = Date.now() + 30_000;
        let checkpoint = -1;
        while (checkpoint < last && Date.now() < caughtUp) {
          const res = await api(a.base, '/v1/projections');
          checkpoint = ((await res.json()) as { projections: Array<{ checkpoint: number }> }).projections[0]?.checkpoint ?? -1;
          if (checkpoint < last) await sleep(200);
        }
        a.running.child.kill('SIGTERM');
        expect((await a.running.exited).code).toBe(0);
        const p = new Projector(store, { dbPath: join(a.dataDir, 'read-model.sqlite'), logger });
        try {
          expect(p.checkpoint).toBe(last);
          expect(new ReadModelQueries(p.db).dump()).toEqual(expected);
        } finally {
          p.close();
        }
      }
    } finally {
      await store.close();
    }
    trace(`done; ${warnings.length} nats-server warnings/errors, e.g. ${JSON.stringify(warnings.slice(-3))}`);
  });
});
