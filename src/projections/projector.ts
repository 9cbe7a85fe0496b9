import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import DatabaseCtor, { type Database } from 'better-sqlite3';
import { AppError } from '../errors/app-error.ts';
import type { StoredDecision } from '../events/event-codec.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import { NodeProjection } from './node-projection.ts';
import { createCheckpointTable, createReadModelTables, dropReadModelTables, renameReadModelTables } from './read-model-schema.ts';

export const LIVE_CHECKPOINT = 'nodes';
const REBUILD_CHECKPOINT = 'nodes_rebuild';
const REBUILD_SUFFIX = '_rebuild';

export interface ProjectorOptions {
  dbPath: string;
  batchSize?: number;
  logger: Logger;
  /** Test hook: runs inside the batch transaction after the rows and before the commit. */
  beforeCommit?: () => void;
}

export interface RebuildProgress {
  position: number;
  target: number;
}

export interface RebuildReport {
  replayed: number;
  lagBefore: number;
  lagAfter: number;
  durationMs: number;
}

export const openReadModelDb = (dbPath: string): Database => {
  if (dbPath !== ':memory:') mkdirSync(dirname(dbPath), { recursive: true });
  const db = new DatabaseCtor(dbPath);
  db.pragma('journal_mode = WAL');
  // NORMAL is durable at transaction boundaries in WAL mode up to a power loss; the log can replay the rest.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  createCheckpointTable(db);
  createReadModelTables(db, '');
  return db;
};

/**
 * Tails the event log into the SQLite read model with an ordered consumer starting at
 * checkpoint + 1. The checkpoint lives in the same database and moves in the same transaction
 * as the rows, so every event takes effect exactly once however the process dies.
 */
export class Projector {
  readonly db: Database;
  private live: NodeProjection;
  private position: number;
  private readonly events = new EventEmitter();
  private abort = new AbortController();
  private running: Promise<void> | null = null;
  private rebuilding = false;
  private failure: Error | null = null;

  constructor(
    private readonly store: EventStore,
    private readonly opts: ProjectorOptions,
  ) {
    this.db = openReadModelDb(opts.dbPath);
    this.live = new NodeProjection(this.db, '', LIVE_CHECKPOINT);
    this.position = this.readCheckpoint(LIVE_CHECKPOINT);
    this.events.setMaxListeners(0);
  }

  get checkpoint(): number {
    return this.position;
  }

  get error(): Error | null {
    return this.failure;
  }

  private readCheckpoint(name: string): number {
    const row = this.db.prepare('SELECT position FROM projection_checkpoints WHERE name = ?').get(name) as { position: number } | undefined;
    return row?.position ?? 0;
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.tail(this.abort.signal).catch((e: unknown) => {
      // An unreadable event stops the projector loudly; it never skips.
      this.failure = e instanceof Error ? e : new Error(String(e));
      this.opts.logger.error({ err: this.failure }, 'projector stopped');
      this.events.emit('failed', this.failure);
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    this.running = null;
  }

  close(): void {
    this.db.close();
  }

  private tail(signal: AbortSignal): Promise<void> {
    // Batches come when full or when caught up, so a quiet log is projected without delay.
    return this.store.follow(
      this.position + 1,
      (batch) => {
        this.live.applyBatch(batch, (s) => this.store.streamIdOf(s), this.opts.beforeCommit);
        this.position = batch.at(-1)!.position;
        this.events.emit('advanced', this.position);
      },
      { batchSize: this.opts.batchSize ?? 2000, signal },
    );
  }

  /** Resolves once the read model includes `position`, or rejects after `timeoutMs`. */
  waitFor(position: number, timeoutMs: number): Promise<boolean> {
    if (this.position >= position) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAdvance = (p: number): void => {
        if (p >= position) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.events.off('advanced', onAdvance);
        resolve(ok);
      };
      this.events.on('advanced', onAdvance);
    });
  }

  async lag(): Promise<number> {
    return Math.max(0, (await this.store.lastPosition()) - this.position);
  }

  /**
   * Builds a second generation of the tables from position 1 while the live one keeps serving,
   * then swaps them in one synchronous step once the rebuild has reached the live checkpoint.
   */
  async rebuild(onProgress?: (p: RebuildProgress) => void): Promise<RebuildReport> {
    if (this.rebuilding) throw new AppError('REBUILD_RUNNING', 'a rebuild is already running', true);
    this.rebuilding = true;
    const started = Date.now();
    const lagBefore = await this.lag();
    try {
      dropReadModelTables(this.db, REBUILD_SUFFIX);
      createReadModelTables(this.db, REBUILD_SUFFIX);
      this.db.prepare('DELETE FROM projection_checkpoints WHERE name = ?').run(REBUILD_CHECKPOINT);
      const next = new NodeProjection(this.db, REBUILD_SUFFIX, REBUILD_CHECKPOINT);
      let cursor = 0;
      let replayed = 0;
      const batchSize = this.opts.batchSize ?? 2000;
      // Chase the live checkpoint until a pass ends exactly on it; nothing awaits between that check and the swap.
      for (;;) {
        const target = this.position;
        if (cursor < target) {
          let batch: StoredDecision[] = [];
          for await (const d of this.store.readAll(cursor + 1, { upTo: target })) {
            batch.push(d);
            if (batch.length >= batchSize || d.position >= target) {
              next.applyBatch(batch, (s) => this.store.streamIdOf(s));
              replayed += batch.length;
              cursor = d.position;
              batch = [];
              onProgress?.({ position: cursor, target });
            }
          }
        }
        if (cursor === this.position) break;
      }
      this.db.transaction(() => {
        dropReadModelTables(this.db, '');
        renameReadModelTables(this.db, REBUILD_SUFFIX, '');
        this.db.prepare('DELETE FROM projection_checkpoints WHERE name = ?').run(REBUILD_CHECKPOINT);
      })();
      this.live = new NodeProjection(this.db, '', LIVE_CHECKPOINT);
      return { replayed, lagBefore, lagAfter: await this.lag(), durationMs: Date.now() - started };
    } finally {
      this.rebuilding = false;
    }
  }
}
