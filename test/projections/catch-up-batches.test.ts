import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Projector, type ProjectorOptions } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { cleanReplay } from '../support/clean-replay.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';

const nats = useNatsServer();
const { logger } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let dir: string;
let last: number;

/** Interleaved provisions, as a fleet's are: every reader batch touches many nodes, each node many batches. */
const NODES = 12;
const drive = async (): Promise<void> => {
  const steps: Array<(i: number) => Parameters<typeof handleCommand>[2]> = [
    (i) => ({ type: 'RequestProvision', nodeId: `node-${i}`, jobId: `job-${i}`, spec: spec({ name: `web-${i}` }), policy: policy() }),
    (i) => ({ type: 'StartAttempt', jobId: `job-${i}` }),
    (i) => ({ type: 'RecordSshKey', jobId: `job-${i}`, attempt: 1, keyId: '1', fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' }),
    (i) => ({ type: 'RecordServerCreateIntent', jobId: `job-${i}`, attempt: 1, serverName: `pl-node-${i}`, labels: {} }),
    (i) => ({ type: 'RecordServerCreated', jobId: `job-${i}`, attempt: 1, serverId: String(1000 + i), actionIds: [], adopted: false }),
    (i) => ({ type: 'RecordServerReady', jobId: `job-${i}`, attempt: 1, serverId: String(1000 + i), ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' }),
    (i) =>
      i % 3 === 0
        ? { type: 'RecordStepFailure', jobId: `job-${i}`, attempt: 1, step: 'server_ready', errorCode: 'PROVIDER_QUOTA_EXCEEDED', errorMessage: 'quota', retryable: false, now: '2026-11-26T12:05:00.000Z' }
        : { type: 'RecordAnsibleStarted', jobId: `job-${i}`, attempt: 1, playbook: 'p.yml' },
  ];
  for (const step of steps) {
    for (let i = 0; i < NODES; i++) await handleCommand(repo, `node-${i}`, step(i), ctx({ now: new Date(Date.UTC(2026, 10, 26, 12, 0, i)).toISOString() }));
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-catch-up-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
  await drive();
  last = await store.lastPosition();
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** Replays the whole log with these options; returns the rows and the checkpoint of every commit. */
const replay = async (name: string, o: Partial<ProjectorOptions>) => {
  const commits: number[] = [];
  const p: Projector = new Projector(store, {
    dbPath: join(dir, `${name}.db`),
    logger,
    ...o,
    beforeCommit: () => commits.push((p.db.prepare("SELECT position FROM projection_checkpoints WHERE name = 'nodes'").get() as { position: number }).position),
  });
  p.start();
  expect(await p.waitFor(last, 20_000)).toBe(true);
  await p.stop();
  const rows = new ReadModelQueries(p.db).dump();
  p.close();
  return { rows, commits };
};

describe('catch-up transactions', () => {
  it('folds many reader batches into one transaction while behind, and ends on the last message', async () => {
    expect(last).toBe(7 * NODES);
    const { rows, commits } = await replay('one-big', { readBatch: 5, batchSize: 10_000, catchUpMs: 60_000 });
    // 17 reader batches, one transaction: only the last batch (caught up) commits.
    expect(commits).toEqual([last]);
    expect(rows).toEqual(await cleanReplay(store, { dir, name: 'clean-1', logger }));
  });

  it('commits when the transaction holds batchSize messages, wherever a reader batch ends', async () => {
    const { commits } = await replay('by-count', { readBatch: 5, batchSize: 12, catchUpMs: 60_000 });
    // Transactions of exactly 12 messages: the count splits reader batches, it does not round to them.
    expect(commits).toEqual(Array.from({ length: last / 12 }, (_, k) => 12 * (k + 1)));
  });

  it('commits after catchUpMs of folding, below batchSize', async () => {
    const { commits } = await replay('by-time', { readBatch: 5, batchSize: 10_000, catchUpMs: 0 });
    // Every reader batch is old enough at once: one transaction per reader batch of 5.
    expect(commits).toEqual(Array.from({ length: Math.ceil(last / 5) }, (_, k) => Math.min(last, 5 * (k + 1))));
  });

  it('builds the same rows with one message per transaction as with one transaction for all', async () => {
    const tiny = await replay('tiny', { readBatch: 1, batchSize: 1 });
    const big = await replay('big', { readBatch: 7, batchSize: 10_000, catchUpMs: 60_000 });
    expect(tiny.commits).toHaveLength(last);
    expect(big.commits).toEqual([last]);
    expect(tiny.rows).toEqual(big.rows);
    expect(big.rows.nodes).toHaveLength(NODES);
  });

  it('leaves nothing of a big transaction that fails before its commit, and a restart catches up to the same rows', async () => {
    const dbPath = join(dir, 'crash.db');
    const crashing = new Projector(store, {
      dbPath, logger, readBatch: 5, batchSize: 10_000, catchUpMs: 60_000,
      beforeCommit: () => {
        throw new Error('injected crash before the commit');
      },
    });
    crashing.start();
    await expect.poll(() => crashing.error?.message, { timeout: 10_000 }).toBe('injected crash before the commit');
    await crashing.stop();
    expect(crashing.checkpoint).toBe(0);
    const rolledBack = new ReadModelQueries(crashing.db).dump();
    crashing.close();
    expect(rolledBack.nodes).toHaveLength(0);
    expect(rolledBack.jobs).toHaveLength(0);

    const restarted = new Projector(store, { dbPath, logger, readBatch: 5, batchSize: 10_000, catchUpMs: 60_000 });
    restarted.start();
    expect(await restarted.waitFor(last, 20_000)).toBe(true);
    await restarted.stop();
    const recovered = new ReadModelQueries(restarted.db).dump();
    restarted.close();
    expect(recovered).toEqual(await cleanReplay(store, { dir, name: 'clean-2', logger }));
  });

  it('commits a batch folded before a rebuild swapped the tables into the new generation, as a clean replay builds it', async () => {
    const live = new Projector(store, { dbPath: join(dir, 'swap.db'), logger, lingerMs: 4_000 });
    live.start();
    expect(await live.waitFor(last, 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 4_100));
    // The first message after a quiet spell commits at once; the ones right after it wait in the open batch for the linger.
    // Nodes 1, 2 and 4 have a running job (every third failed).
    await handleCommand(repo, 'node-1', { type: 'RequestCancel', jobId: 'job-1', reason: 'swap' }, ctx());
    const lone = await store.lastPosition();
    expect(await live.waitFor(lone, 1_000)).toBe(true);
    await handleCommand(repo, 'node-2', { type: 'RequestCancel', jobId: 'job-2', reason: 'swap' }, ctx());
    await handleCommand(repo, 'node-4', { type: 'RequestCancel', jobId: 'job-4', reason: 'swap' }, ctx());
    const end = await store.lastPosition();
    // Give the follower a moment to fold them (well inside the linger).
    await new Promise((r) => setTimeout(r, 200));
    await live.rebuild();
    // The rebuild ended on the committed checkpoint; the two cancels were still folded but not committed.
    expect(live.checkpoint).toBe(lone);
    expect(await live.waitFor(end, 5_000)).toBe(true);
    await live.stop();
    const swapped = new ReadModelQueries(live.db).dump();
    live.close();
    last = end;
    expect(swapped).toEqual(await cleanReplay(store, { dir, name: 'clean-3', logger }));
  });
});
