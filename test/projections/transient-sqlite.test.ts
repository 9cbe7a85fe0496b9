import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import DatabaseCtor from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { isTransientSqliteError } from '../../src/projections/sqlite-errors.ts';
import { useNatsServer } from '../support/nats.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

const nats = useNatsServer();
const { logger, lines } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let dir: string;

const createNodes = async (from: number, count: number): Promise<void> => {
  for (let i = from; i < from + count; i++) {
    const nodeId = `node-${i}`;
    await handleCommand(repo, nodeId, { type: 'RequestProvision', nodeId, jobId: `job-${i}`, spec: spec({ name: `web-${i}` }), policy: policy() }, ctx());
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-transient-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
  await createNodes(0, 20);
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('transient SQLite errors', () => {
  it('retries a full disk with backoff, then catches up to exactly what a clean replay builds', async () => {
    const live = new Projector(store, { dbPath: join(dir, 'live.db'), logger, batchSize: 10, maxRetryDelayMs: 200 });
    live.start();
    expect(await live.waitFor(await store.lastPosition(), 30_000)).toBe(true);

    // The database may not grow past its current size: every new page is SQLITE_FULL, as on a full disk.
    const pages = live.db.pragma('page_count', { simple: true }) as number;
    live.db.pragma(`max_page_count = ${pages}`);
    const stuckAt = live.checkpoint;
    await createNodes(100, 200);
    const end = await store.lastPosition();
    await expect.poll(() => live.retrying?.code, { timeout: 10_000 }).toBe('SQLITE_FULL');
    await expect.poll(() => live.retrying?.attempts ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(live.error).toBeNull();
    expect(live.checkpoint).toBeLessThan(end);
    expect(live.checkpoint).toBeGreaterThanOrEqual(stuckAt);
    expect(lines.some((l) => l.includes('SQLITE_FULL') && l.includes('retrying'))).toBe(true);

    live.db.pragma('max_page_count = 1073741823');
    expect(await live.waitFor(end, 30_000)).toBe(true);
    expect(live.retrying).toBeNull();
    expect(live.error).toBeNull();
    await live.stop();
    const recovered = new ReadModelQueries(live.db).dump();
    live.close();
    expect(recovered.nodes).toHaveLength(220);

    const clean = new Projector(store, { dbPath: join(dir, 'clean.db'), logger });
    clean.start();
    expect(await clean.waitFor(end, 30_000)).toBe(true);
    await clean.stop();
    expect(recovered).toEqual(new ReadModelQueries(clean.db).dump());
    clean.close();
  });

  it('tells transient codes from permanent ones', () => {
    const err = (code: string) => new DatabaseCtor.SqliteError('x', code);
    for (const code of ['SQLITE_FULL', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_IOERR_WRITE', 'SQLITE_LOCKED']) expect(isTransientSqliteError(err(code)), code).toBe(true);
    for (const code of ['SQLITE_CORRUPT', 'SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_READONLY', 'SQLITE_ERROR']) expect(isTransientSqliteError(err(code)), code).toBe(false);
    expect(isTransientSqliteError(new Error('SQLITE_FULL'))).toBe(false);
  });
});
