import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { openReadModelDb } from '../../src/projections/read-model-schema.ts';
import { jobColumns, nodeColumns } from '../../src/projections/read-model-views.ts';
import { cleanReplay as replayFromScratch } from '../support/clean-replay.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';

const nats = useNatsServer();
const { logger } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let dir: string;

/** Drives a node some way through its lifecycle, so the read model has varied rows. */
const driveNode = async (i: number): Promise<void> => {
  const nodeId = `node-${i}`;
  const jobId = `job-${i}`;
  const run = (cmd: Parameters<typeof handleCommand>[2]) => handleCommand(repo, nodeId, cmd, ctx({ now: new Date(Date.UTC(2026, 10, 26, 12, 0, i)).toISOString() }));
  await run({ type: 'RequestProvision', nodeId, jobId, spec: spec({ name: `web-${i}` }), policy: policy() });
  if (i % 5 === 0) return;
  await run({ type: 'StartAttempt', jobId });
  await run({ type: 'RecordSshKey', jobId, attempt: 1, keyId: '1', fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' });
  if (i % 5 === 1) {
    await run({ type: 'RecordStepFailure', jobId, attempt: 1, step: 'server_create', errorCode: 'PROVIDER_QUOTA_EXCEEDED', errorMessage: 'quota', retryable: false, now: '2026-11-26T12:05:00.000Z' });
    return;
  }
  await run({ type: 'RecordServerCreateIntent', jobId, attempt: 1, serverName: `pl-${nodeId}`, labels: {} });
  await run({ type: 'RecordServerCreated', jobId, attempt: 1, serverId: String(1000 + i), actionIds: [], adopted: false });
  await run({ type: 'RecordServerReady', jobId, attempt: 1, serverId: String(1000 + i), ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
  if (i % 5 === 2) {
    await run({ type: 'RequestCancel', jobId, reason: 'test' });
    await run({ type: 'ConfirmCancel', jobId });
    return;
  }
  await run({ type: 'RecordAnsibleStarted', jobId, attempt: 1, playbook: 'p.yml' });
  const recap = { ok: 1, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 };
  await run({ type: 'RecordAnsibleResult', jobId, attempt: 1, result: { ok: i % 5 === 3, errorCode: i % 5 === 3 ? null : 'ANSIBLE_HOST_FAILED', retryable: true, exitCode: i % 5 === 3 ? 0 : 2, recap, durationMs: 10, outputTail: 'tail', finishedAt: '2026-11-26T12:06:00.000Z' } });
};

const cleanReplay = (name: string) => replayFromScratch(store, { dir, name, logger });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-proj-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
  for (let i = 0; i < 40; i++) await driveNode(i);
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('projector', () => {
  it('projects node and job rows whose statuses agree', async () => {
    const dump = await cleanReplay('agree');
    expect(dump.nodes).toHaveLength(40);
    expect(dump.jobs).toHaveLength(40);
    const byId = new Map(dump.jobs.map((j) => [j.nodeId, j]));
    for (const n of dump.nodes) {
      const job = byId.get(n.id)!;
      const pairs: Record<string, string[]> = { queued: ['pending'], running: ['acquiring', 'provisioning'], succeeded: ['ready'], failed: ['failed'], cancelled: ['failed'] };
      expect(pairs[job.status]).toContain(n.status);
    }
    expect(dump.nodes.find((n) => n.id === 'node-3')).toMatchObject({ status: 'ready', ipv4: '127.0.0.1', providerServerId: '1003', lastJobId: 'job-3', currentJobId: null });
    expect(dump.jobs.find((j) => j.id === 'job-1')).toMatchObject({ status: 'failed', errorCode: 'PROVIDER_QUOTA_EXCEEDED', step: 'done' });
    expect(dump.jobs.find((j) => j.id === 'job-4')).toMatchObject({ status: 'queued', attempt: 1, errorCode: 'ANSIBLE_HOST_FAILED', runAfter: '2026-11-26T12:07:00.000Z' });
    // The raw tail is its own field; the message is never the tail (here the runner gave no summary, so it is the code).
    expect(dump.jobs.find((j) => j.id === 'job-4')).toMatchObject({ outputTail: 'tail', errorMessage: 'ANSIBLE_HOST_FAILED' });
    expect(dump.jobs.find((j) => j.id === 'job-1')).toMatchObject({ outputTail: null });
  });

  it('migrates a read model made before the outputTail and host-key columns: they are added, old rows read null', async () => {
    const dbPath = join(dir, 'old-layout.db');
    const old = new Database(dbPath);
    const added = new Set(['output_tail', 'playbook_digest', 'product_version', 'host_key_fingerprint', 'host_key_mismatch_expected', 'host_key_mismatch_presented', 'host_key_source', 'presented_host_key_fingerprint']);
    const legacyJobs = Object.values(jobColumns).filter((c) => !added.has(c.column));
    const legacyNodes = Object.values(nodeColumns).filter((c) => !added.has(c.column));
    old.exec(`CREATE TABLE jobs (${legacyJobs.map((c) => `${c.column} ${c.sql}`).join(', ')})`);
    old.exec(`CREATE TABLE nodes (${legacyNodes.map((c) => `${c.column} ${c.sql}`).join(', ')})`);
    old.prepare(`INSERT INTO jobs (${legacyJobs.map((c) => c.column).join(', ')}) VALUES (${legacyJobs.map(() => '?').join(', ')})`).run(
      'job-old', 'node-old', 'node_provision', 'failed', 'done', 1, 3, 'X', 'm', null, '2026-01-01T00:00:00.000Z', null, null, '2026-01-01T00:00:00.000Z', 5,
    );
    old.prepare(`INSERT INTO nodes (${legacyNodes.map((c) => c.column).join(', ')}) VALUES (${legacyNodes.map(() => '?').join(', ')})`).run(
      'node-old', 'old', 'failed', 'hetzner', 'cx22', 'fsn1', 'ubuntu-24.04', 'root', 22, null, null, null, null, 'job-old', '2026-01-01T00:00:00.000Z', 5,
    );
    old.close();
    const db = openReadModelDb(dbPath);
    try {
      const q = new ReadModelQueries(db);
      expect(q.getJob('job-old')).toMatchObject({
        id: 'job-old', errorMessage: 'm', outputTail: null, playbookDigest: null, productVersion: null, hostKeyFingerprint: null, hostKeyMismatchExpected: null, hostKeyMismatchPresented: null,
      });
      expect(q.getNode('node-old')).toMatchObject({ id: 'node-old', lastJobId: 'job-old', hostKeyFingerprint: null, hostKeySource: null, presentedHostKeyFingerprint: null });
    } finally {
      db.close();
    }
  });

  it('applies each event exactly once after a crash between apply and commit', async () => {
    const dbPath = join(dir, 'crash.db');
    let batches = 0;
    const crashing = new Projector(store, {
      dbPath,
      logger,
      batchSize: 7,
      beforeCommit: () => {
        if (++batches === 3) throw new Error('injected crash between apply and commit');
      },
    });
    crashing.start();
    await expect.poll(() => crashing.error?.message, { timeout: 10_000 }).toBe('injected crash between apply and commit');
    // Two batches of 7 committed; the third was rolled back with its checkpoint.
    expect(crashing.checkpoint).toBeGreaterThan(0);
    await crashing.stop();
    const committed = new ReadModelQueries(crashing.db).dump();
    crashing.close();
    expect(committed.nodes.length).toBeLessThan(40);

    const restarted = new Projector(store, { dbPath, logger, batchSize: 7 });
    restarted.start();
    expect(await restarted.waitFor(await store.lastPosition(), 20_000)).toBe(true);
    await restarted.stop();
    const recovered = new ReadModelQueries(restarted.db).dump();
    restarted.close();
    expect(recovered).toEqual(await cleanReplay('clean-after-crash'));
  });

  it('rebuilds beside the live tables while commands keep arriving, then swaps with no lost update', async () => {
    const live = new Projector(store, { dbPath: join(dir, 'live.db'), logger, batchSize: 5 });
    live.start();
    expect(await live.waitFor(await store.lastPosition(), 20_000)).toBe(true);
    const before = await live.lag();
    let writing = true;
    const writer = (async () => {
      for (let i = 100; writing || i < 110; i++) await driveNode(i);
    })();
    const progress: number[] = [];
    const report = await live.rebuild((p) => progress.push(p.position));
    writing = false;
    await writer;
    expect(report.replayed).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThan(1);
    expect(before).toBe(0);
    expect(await live.waitFor(await store.lastPosition(), 20_000)).toBe(true);
    await live.stop();
    const rebuilt = new ReadModelQueries(live.db).dump();
    live.close();
    expect(rebuilt.nodes.length).toBeGreaterThanOrEqual(50);
    expect(rebuilt).toEqual(await cleanReplay('clean-after-rebuild'));
  });

  it('commits a lone live message at once, and coalesces the ones right after it into one transaction with the checkpoint', async () => {
    const dbPath = join(dir, 'linger.db');
    let commits = 0;
    const live = new Projector(store, { dbPath, logger, lingerMs: 5_000, beforeCommit: () => void commits++ });
    live.start();
    expect(await live.waitFor(await store.lastPosition(), 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 5_100));

    const before = commits;
    const first = 1_000;
    await driveNode(first);
    const lone = await store.lastPosition();
    // Well inside the 5 s linger: a message after a quiet spell does not wait for company.
    expect(await live.waitFor(lone, 4_000)).toBe(true);
    expect(commits - before).toBe(1);

    for (let i = 1; i <= 3; i++) await driveNode(first + 5 * i);
    const last = await store.lastPosition();
    expect(last - lone).toBeGreaterThanOrEqual(3);
    expect(await live.waitFor(last, 20_000)).toBe(true);
    // Appended within the linger after the first commit: one more transaction, not one per message (2 if appending outlasted it).
    expect(commits - before - 1).toBeLessThanOrEqual(2);
    await live.stop();
    const checkpoint = live.db.prepare('SELECT position FROM projection_checkpoints WHERE name = ?').get('nodes') as { position: number };
    expect(checkpoint.position).toBe(last);
    const projected = new ReadModelQueries(live.db).dump();
    live.close();
    expect(projected).toEqual(await cleanReplay('clean-after-linger'));
  });
});
