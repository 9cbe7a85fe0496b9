import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../logging/logger.ts';

export interface HeapReducerDeps {
  /** Event-loop utilisation (0..1) since the previous call: the share of time the loop was busy. */
  busyShare: () => number;
  /** Committed V8 heap in bytes (heapTotal) and the part of it in use (heapUsed). */
  committedBytes: () => number;
  usedBytes: () => number;
  /** A full, compacting garbage collection. */
  collect: () => void;
  logger?: Logger;
}

export interface HeapReducerOptions {
  /** How often the loop's busy share is sampled. */
  checkEveryMs: number;
  /** How long the loop must stay below `idleBelow` before the heap is reduced. */
  idleForMs: number;
  /** Busy share under which a sample counts as idle. */
  idleBelow: number;
  /** Only when at least this much of the committed heap is not in use: what a burst leaves behind. */
  slackBytes: number;
}

export const DEFAULT_HEAP_REDUCER: HeapReducerOptions = { checkEveryMs: 5_000, idleForMs: 15_000, idleBelow: 0.05, slackBytes: 32 * 2 ** 20 };

/**
 * V8 keeps the heap it committed during a burst: its memory reducer runs from idle tasks, which
 * Node's platform never schedules. So after a burst (committed heap grew) followed by a quiet spell
 * (the event loop nearly idle: no requests, saga steps or projection worth the name), one full GC
 * shrinks the heap and lets RSS fall (measured in docs/deployment.md, "Sizing"). At most once per
 * idle period (a busy sample starts the next), so a heap V8 cannot shrink costs one GC per burst, not
 * one per tick. A /metrics scrape neither ends an idle period nor starts a burst: idleness is the loop's load.
 */
export class IdleHeapReducer {
  private idleSinceMs: number | null = null;
  /** Busy since the last reduction: this idle period may reduce. */
  private armed = true;
  private reductions = 0;

  constructor(
    private readonly deps: HeapReducerDeps,
    private readonly o: HeapReducerOptions = DEFAULT_HEAP_REDUCER,
  ) {}

  /** One sample at `nowMs`; true when it reduced the heap. */
  tick(nowMs: number): boolean {
    if (this.deps.busyShare() >= this.o.idleBelow) {
      this.idleSinceMs = null;
      this.armed = true;
      return false;
    }
    this.idleSinceMs ??= nowMs;
    if (!this.armed || nowMs - this.idleSinceMs < this.o.idleForMs) return false;
    const before = this.deps.committedBytes();
    if (before - this.deps.usedBytes() < this.o.slackBytes) return false;
    const started = performance.now();
    this.deps.collect();
    this.armed = false;
    this.reductions++;
    this.deps.logger?.info({ committedMbBefore: mb(before), committedMbAfter: mb(this.deps.committedBytes()), usedMbAfter: mb(this.deps.usedBytes()), gcMs: Math.round(performance.now() - started) }, 'idle after a burst: heap reduced');
    return true;
  }

  get count(): number {
    return this.reductions;
  }
}

const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);

/** `gc()` without starting node with --expose-gc: the flag is set at run time and the function taken from a fresh context. */
const fullGc = (): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
};

/** Samples this process's event loop every `checkEveryMs`; the timer never keeps the process alive. */
export const startIdleHeapReducer = (logger: Logger, o: HeapReducerOptions = DEFAULT_HEAP_REDUCER): { stop(): void; reducer: IdleHeapReducer } => {
  let last = performance.eventLoopUtilization();
  const reducer = new IdleHeapReducer(
    {
      busyShare: () => {
        const now = performance.eventLoopUtilization();
        const share = performance.eventLoopUtilization(now, last).utilization;
        last = now;
        return share;
      },
      committedBytes: () => getHeapStatistics().total_heap_size,
      usedBytes: () => getHeapStatistics().used_heap_size,
      collect: fullGc(),
      logger,
    },
    o,
  );
  const timer = setInterval(() => reducer.tick(Date.now()), o.checkEveryMs);
  timer.unref();
  return { stop: () => clearInterval(timer), reducer };
};
