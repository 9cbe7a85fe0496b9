import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import type { HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { loadOrCreateSshKeyPair } from '../../src/ssh-keys/key-pair-store.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { fakeSshd, requestProvision, startSimulator, waitTerminal } from '../support/saga-harness.ts';
import { WorkerPool } from '../support/worker-pool.ts';

const nats = useNatsServer();
const { logger } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let sim: HetznerSimulator;
let sshd: Awaited<ReturnType<typeof fakeSshd>>;
let dir: string;

const serversOf = (nodeId: string) => sim.admin.snapshot().servers.filter((s) => Object.values(s.labels).includes(nodeId));
const workerEnv = (o: { runner: 'ansible' | 'noop'; crashPlan?: unknown[] }) => ({
  NATS_URL: nats.server.url,
  SIM_URL: sim.url,
  SIM_TOKEN: sim.token,
  DATA_DIR: dir,
  RUNNER: o.runner,
  CRASH_DIR: dir,
  CRASH_PLAN: JSON.stringify(o.crashPlan ?? []),
});

/** The lifecycle without ActionPolled (its count depends on timing): what one clean attempt appends. */
const CANONICAL = ['ProvisionRequested', 'JobStarted', 'SshKeyRegistered', 'ServerCreateRequested', 'ServerCreated', 'ServerReady', 'AnsibleStarted', 'AnsibleSucceeded', 'ProvisionSucceeded'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-workers-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 600_000, logger });
  repo = new NodeRepository(store);
  sim = await startSimulator(0);
  sshd = await fakeSshd();
  // Created once up front, as `npm start` would, so that racing workers share one key pair.
  await loadOrCreateSshKeyPair({ dataDir: dir });
});
afterAll(async () => {
  await sshd.close();
  await sim.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('saga workers as real processes', () => {
  const steps = ['ensureSshKey', 'createServer', 'pollActions', 'awaitServer', 'runAnsible'];
  const boundaries = ['before-effect', 'after-effect', 'after-append'];
  const plan = boundaries.flatMap((boundary) => steps.map((step) => ({ nodeId: `crash-${boundary}-${step}`.toLowerCase(), boundary, step })));

  it(`survives a SIGKILL at every step boundary (${plan.length} crash points) with one server and one key`, async () => {
    const pool = new WorkerPool(2, workerEnv({ runner: 'ansible', crashPlan: plan }));
    await pool.start();
    try {
      // One node at a time: a worker killed for one node's crash must not pre-empt another node's planned crash point.
      const states = [];
      for (const p of plan) {
        await requestProvision(repo, p.nodeId, { sshPort: sshd.port });
        states.push(await waitTerminal(store, p.nodeId, 60_000));
      }
      // Every planned crash really happened: otherwise this test would prove nothing.
      expect(plan.filter((_, i) => !existsSync(join(dir, `crashed-${i}`)))).toEqual([]);
      // The last crash can land after its job turned terminal: wait for the pool to see that exit too.
      await expect.poll(() => pool.restarts, { timeout: 10_000 }).toBeGreaterThanOrEqual(plan.length);
      for (const [i, s] of states.entries()) {
        const p = plan[i]!;
        expect({ node: p.nodeId, status: s.jobs[`${p.nodeId}-job`]?.status }).toEqual({ node: p.nodeId, status: 'succeeded' });
        expect(serversOf(p.nodeId)).toHaveLength(1);
        const types = (await repo.history(p.nodeId)).map((e) => e.type).filter((t) => t !== 'ActionPolled');
        expect(types).toEqual(CANONICAL);
      }
      expect(sim.admin.snapshot().sshKeys).toHaveLength(1);
    } finally {
      await pool.stop();
    }
  }, 200_000);

  it('finishes 20 provisions across a kill -9 and restart of nats-server, losing and duplicating nothing', async () => {
    sim.admin.setActionDuration(1500);
    const pool = new WorkerPool(2, workerEnv({ runner: 'noop' }));
    await pool.start();
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `restart-${i}`);
      for (const id of ids) await requestProvision(repo, id, { sshPort: sshd.port });
      // Mid-flight: the kill waits until every server is created (its create action then runs 1.5 s), however slowly the workers start.
      await expect
        .poll(async () => (await Promise.all(ids.map(async (id) => (await repo.history(id)).some((e) => e.type === 'ServerCreated')))).filter(Boolean).length, { timeout: 60_000, interval: 100 })
        .toBe(ids.length);
      await nats.server.kill();
      await new Promise((r) => setTimeout(r, 1000));
      await nats.server.restart();
      const states = await Promise.all(ids.map((id) => waitTerminal(store, id, 90_000)));
      for (const [i, s] of states.entries()) {
        const id = ids[i]!;
        expect({ id, status: s.jobs[`${id}-job`]?.status }).toEqual({ id, status: 'succeeded' });
        const history = await repo.history(id);
        expect(history.map((e) => e.type).filter((t) => t !== 'ActionPolled')).toEqual(CANONICAL);
        expect(new Set(history.map((e) => e.eventId)).size).toBe(history.length);
        expect(serversOf(id)).toHaveLength(1);
      }
    } finally {
      sim.admin.setActionDuration(0);
      await pool.stop();
    }
  }, 150_000);

  it('lets two workers run 50 provisions concurrently with one server each and no duplicate creates', async () => {
    const createdBefore = sim.admin.snapshot().counters.serversCreated;
    const pool = new WorkerPool(2, workerEnv({ runner: 'noop' }), 0);
    await pool.start();
    try {
      const ids = Array.from({ length: 50 }, (_, i) => `pair-${i}`);
      await Promise.all(ids.map((id) => requestProvision(repo, id, { sshPort: sshd.port })));
      const states = await Promise.all(ids.map((id) => waitTerminal(store, id, 90_000)));
      expect(states.map((s) => s.status)).toEqual(ids.map(() => 'ready'));
      expect(ids.map((id) => serversOf(id).length)).toEqual(ids.map(() => 1));
      expect(sim.admin.snapshot().counters.serversCreated - createdBefore).toBe(50);
      expect(pool.restarts).toBe(0);
    } finally {
      await pool.stop();
    }
  }, 150_000);
});
