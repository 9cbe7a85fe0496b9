import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from 'better-sqlite3';
import { AppError } from '../errors/app-error.ts';
import { READ_BATCH, type EventStore, type RawStoredMessage } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import { NodeProjection, type NewlyBroken } from './node-projection.ts';
import { OpenBatch } from './open-batch.ts';
import { decodeForProjection, type ProjectedMessage } from './projected-message.ts';
import { ReadModelQueries } from './read-model-queries.ts';
import { createReadModelTables, dropReadModelTables, openReadModelDb, renameReadModelTables } from './read-model-schema.ts';
import { isTransientSqliteError } from './sqlite-errors.ts';

export const LIVE_CHECKPOINT = 'nodes';
const REBUILD_CHECKPOINT = 'nodes_rebuild';
const REBUILD_SUFFIX = '_rebuild';
/**
 * A catch-up far behind folds many reader batches into one transaction: each node's rows and state
 * are written once per transaction, so in a fleet's shape (thousands of nodes, one message each per
 * reader batch) bigger transactions mean far fewer writes. It commits at this many messages, or
 * after CATCH_UP_MS, whichever comes first; a caught-up projector commits at once or after the linger.
 * Memory: at most one folded state per message held (ADR 0090).
 */
const DEFAULT_BATCH = 32_768;
/** A catch-up transaction commits after this long since its first message, so progress and readers see it move. */
const DEFAULT_CATCH_UP_MS = 250;
/**
 * Live messages that arrive within this long of the last commit share the next transaction: a bare
 * BEGIN/COMMIT per message was half the projection's cost under load. A message after a quiet spell
 * commits at once, so a lone write is not delayed.
 */
const DEFAULT_LINGER_MS = 4;

export interface ProjectorOptions {
  dbPath: string;
  /** Messages per transaction at most (default 32 768); the reader's batches are at most READ_BATCH. */
  batchSize?: number;
  /** A catch-up transaction commits after this many ms of folding, even below batchSize (default 250). */
  catchUpMs?: number;
  /** Messages per reader batch at most (default and cap READ_BATCH); tests make it small to cover many reader batches per transaction. */
  readBatch?: number;
  logger: Logger;
  /** Test hook: runs inside the batch transaction after the rows and before the commit. */
  beforeCommit?: () => void;
  /** Cap of the backoff between retries of a batch that hit a transient SQLite error (default 5 s). */
  maxRetryDelayMs?: number;
  /** How long live messages arriving soon after a commit wait for company before theirs (default 4 ms). */
  lingerMs?: number;
}

/** The projector is retrying a batch after a transient SQLite error (a full disk, a lock). */
export interface ProjectorStall {
  code: string;
  attempts: number;
  since: string;
}

const FIRST_RETRY_DELAY_MS = 100;

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
  private stall: ProjectorStall | null = null;
  /** Live messages folded but not yet committed; they are read again from the checkpoint if lost. */
  private open: OpenBatch | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private lastCommitAt = -Infinity;
  /** A commit that failed in the linger timer, outside the follow callback: ends the follow and is rethrown. */
  private lingerFailure: unknown = null;
  private endFollow: (() => void) | null = null;

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

  /** Set when the projector loop is dead: an error that is neither transient nor a decode error (a bug). */
  get error(): Error | null {
    return this.failure;
  }

  /** Set while a batch is being retried after a transient SQLite error; cleared by the next commit. */
  get retrying(): ProjectorStall | null {
    return this.stall;
  }

  /** What the live projection's folded-state cache holds (bounded by STATE_CACHE_BUDGET characters). */
  get cachedStates(): { nodes: number; chars: number } {
    return this.live.cached;
  }

  /** How many nodes are not projected because their log holds a message that does not decode. */
  brokenNodeCount(): number {
    return new ReadModelQueries(this.db).brokenNodeCount();
  }

  private readCheckpoint(name: string): number {
    const row = this.db.prepare('SELECT position FROM projection_checkpoints WHERE name = ?').get(name) as { position: number } | undefined;
    return row?.position ?? 0;
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.tail(this.abort.signal).catch((e: unknown) => {
      // Not transient, not a decode error: a bug. Stop loudly rather than guess.
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

  /**
   * Batches come when full or when caught up, so a quiet log is projected without delay. A batch
   * that hits a transient SQLite error was rolled back with its checkpoint: follow again from the
   * checkpoint after a capped backoff, so the same batch is retried.
   */
  private async tail(signal: AbortSignal): Promise<void> {
    const cap = this.opts.maxRetryDelayMs ?? 5000;
    for (;;) {
      const follow = new AbortController();
      const stopFollowing = (): void => follow.abort();
      signal.addEventListener('abort', stopFollowing, { once: true });
      this.endFollow = stopFollowing;
      try {
        await this.store.followRaw(this.position + 1, (raw, caughtUp) => this.receiveLive(raw, caughtUp), { batchSize: this.readBatch, signal: follow.signal });
        if (this.lingerFailure !== null) throw this.lingerFailure;
        this.commitOpen();
        return;
      } catch (e) {
        if (signal.aborted) return;
        if (!isTransientSqliteError(e)) throw e;
        const attempts = (this.stall?.attempts ?? 0) + 1;
        const delayMs = Math.min(cap, FIRST_RETRY_DELAY_MS * 2 ** (attempts - 1));
        this.stall = { code: e.code, attempts, since: this.stall?.since ?? new Date().toISOString() };
        this.opts.logger.warn({ err: e, code: e.code, attempts, delayMs, checkpoint: this.position }, 'projector: transient SQLite error, retrying the batch');
        await sleep(delayMs, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
      } finally {
        signal.removeEventListener('abort', stopFollowing);
        this.endFollow = null;
        this.lingerFailure = null;
        this.dropOpen();
      }
    }
  }

  private get batchSize(): number {
    return this.opts.batchSize ?? DEFAULT_BATCH;
  }

  private get readBatch(): number {
    return Math.min(this.batchSize, this.opts.readBatch ?? READ_BATCH, READ_BATCH);
  }

  /** Whether an open batch should commit now although it is below batchSize: it has folded for long enough. */
  private isRipe(open: OpenBatch): boolean {
    return performance.now() - open.openedAt >= (this.opts.catchUpMs ?? DEFAULT_CATCH_UP_MS);
  }

  /**
   * Folds a reader batch into the open one. Behind the log's end it commits at batchSize or after
   * catchUpMs; caught up, at once when the last commit is older than the linger, else soon after.
   */
  private receiveLive(raw: RawStoredMessage[], caughtUp: boolean): void {
    // A timed commit failed: nothing after it may commit (the checkpoint would pass the failed messages); the follow is ending.
    if (this.lingerFailure !== null) return;
    foldCapped(this.live, raw, this.batchSize, () => (this.open ??= new OpenBatch()), () => this.commitOpen(), (s) => this.store.streamIdOf(s));
    const open = this.open;
    if (!open) return;
    if (!caughtUp) {
      if (this.isRipe(open)) this.commitOpen();
      return;
    }
    const lingerMs = this.opts.lingerMs ?? DEFAULT_LINGER_MS;
    const sinceCommit = performance.now() - this.lastCommitAt;
    if (sinceCommit >= lingerMs) {
      this.commitOpen();
      return;
    }
    this.lingerTimer ??= setTimeout(() => {
      this.lingerTimer = null;
      try {
        this.commitOpen();
      } catch (e) {
        this.lingerFailure = e;
        this.endFollow?.();
      }
    }, lingerMs - sinceCommit);
  }

  /** Commits the open batch into the live generation (whichever it is now: a rebuild may have swapped it). */
  private commitOpen(): void {
    const open = this.open;
    this.dropOpen();
    if (!open || open.count === 0) return;
    this.logBroken(this.live, this.live.commit(open, this.opts.beforeCommit));
    this.position = open.last;
    this.lastCommitAt = performance.now();
    if (this.stall) this.opts.logger.info({ checkpoint: this.position, attempts: this.stall.attempts }, 'projector: recovered');
    this.stall = null;
    this.events.emit('advanced', this.position);
  }

  private dropOpen(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.open = null;
  }

  private logBroken(into: NodeProjection, broken: NewlyBroken[]): void {
    for (const { nodeId, message } of broken) {
      this.opts.logger.error(
        { code: 'EVENT_INVALID', nodeId, position: message.position, reason: message.reason, projection: into.checkpointName },
        'a message does not decode: its node is marked broken and no longer projected; every other node is',
      );
    }
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
      // Chase the live checkpoint until a pass ends exactly on it; nothing awaits between that check and the swap.
      for (;;) {
        const target = this.position;
        if (cursor < target) {
          await this.replay(next, cursor + 1, target, (position, n) => {
            replayed += n;
            cursor = position;
            onProgress?.({ position, target });
          });
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

  /**
   * Applies the log from `from` to `upTo` to another generation, through the same decoding and the
   * same transactions (batchSize, catchUpMs) as a catch-up; the last one ends exactly at `upTo`.
   */
  private async replay(into: NodeProjection, from: number, upTo: number, onApplied: (position: number, count: number) => void): Promise<void> {
    const done = new AbortController();
    let open: OpenBatch | null = null;
    const commit = (): void => {
      const b = open;
      open = null;
      if (!b || b.count === 0) return;
      this.logBroken(into, into.commit(b));
      onApplied(b.last, b.count);
    };
    await this.store.followRaw(
      from,
      (raw) => {
        if (done.signal.aborted) return;
        const reached = raw.at(-1)!.position >= upTo;
        const upToTarget = reached ? raw.filter((m) => m.position <= upTo) : raw;
        foldCapped(into, upToTarget, this.batchSize, () => (open ??= new OpenBatch()), commit, (s) => this.store.streamIdOf(s));
        if (reached || (open && this.isRipe(open))) commit();
        if (reached) done.abort();
      },
      { batchSize: this.readBatch, signal: done.signal },
    );
  }
}

/** Decodes and folds reader messages into the open batch, committing it each time it holds `cap` messages. */
const foldCapped = (
  into: NodeProjection,
  raw: readonly RawStoredMessage[],
  cap: number,
  openBatch: () => OpenBatch,
  commit: () => void,
  nodeIdOf: (subject: string) => string,
): void => {
  for (let from = 0; from < raw.length; ) {
    const open = openBatch();
    const to = Math.min(raw.length, from + cap - open.count);
    const decoded: ProjectedMessage[] = [];
    for (let i = from; i < to; i++) decoded.push(decodeForProjection(raw[i]!));
    into.fold(open, decoded, nodeIdOf);
    from = to;
    if (open.count >= cap) commit();
  }
};
