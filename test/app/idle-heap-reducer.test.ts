import { describe, expect, it } from 'vitest';
import { IdleHeapReducer, startIdleHeapReducer, type HeapReducerOptions } from '../../src/app/idle-heap-reducer.ts';
import { createLogger } from '../../src/logging/logger.ts';

const MB = 2 ** 20;
const options: HeapReducerOptions = { checkEveryMs: 1_000, idleForMs: 10_000, idleBelow: 0.05, slackBytes: 32 * MB };

/** A process whose loop load and heap the test sets; collect() gives back the unused part, as V8's full GC does. */
const fakeProcess = () => {
  const p = { busy: 0, committed: 100 * MB, used: 90 * MB, collections: 0 };
  const reducer = new IdleHeapReducer(
    {
      busyShare: () => p.busy,
      committedBytes: () => p.committed,
      usedBytes: () => p.used,
      collect: () => {
        p.collections += 1;
        p.committed = p.used + 5 * MB;
      },
    },
    options,
  );
  /** A burst: the loop busy for a few seconds, leaving the heap bigger than what is in use. */
  const burst = (fromS: number, committedMb: number): void => {
    p.busy = 0.9;
    p.committed = committedMb * MB;
    tickSeconds(reducer, fromS, fromS + 2);
    p.busy = 0.01;
  };
  return { p, reducer, burst };
};

/** Ticks every second from `fromS` to `toS` inclusive; returns the seconds at which the heap was reduced. */
const tickSeconds = (reducer: IdleHeapReducer, fromS: number, toS: number): number[] => {
  const reduced: number[] = [];
  for (let s = fromS; s <= toS; s++) if (reducer.tick(s * 1000)) reduced.push(s);
  return reduced;
};

describe('IdleHeapReducer', () => {
  it('reduces the heap once the loop has been idle for idleForMs after a burst', () => {
    const { p, reducer, burst } = fakeProcess();
    burst(0, 300);
    expect(tickSeconds(reducer, 3, 30)).toEqual([13]);
    expect(p.collections).toBe(1);
    expect(p.committed).toBe(95 * MB);
  });

  it('collects once per idle period, even when V8 cannot give the heap back', () => {
    const { p, reducer, burst } = fakeProcess();
    p.used = 250 * MB; // live data: the GC frees nothing, the slack stays
    burst(0, 300);
    p.committed = 300 * MB;
    expect(tickSeconds(reducer, 3, 30)).toEqual([13]);
    p.committed = 300 * MB;
    expect(tickSeconds(reducer, 31, 300)).toEqual([]);
    burst(301, 320);
    expect(tickSeconds(reducer, 304, 330)).toEqual([314]);
    expect(p.collections).toBe(2);
  });

  it('waits while the loop stays busy, and a busy sample restarts the idle clock', () => {
    const { p, reducer } = fakeProcess();
    p.committed = 300 * MB;
    p.busy = 0.2;
    expect(tickSeconds(reducer, 0, 30)).toEqual([]);
    p.busy = 0;
    expect(tickSeconds(reducer, 31, 38)).toEqual([]);
    p.busy = 0.2;
    tickSeconds(reducer, 39, 39);
    p.busy = 0;
    expect(tickSeconds(reducer, 40, 60)).toEqual([50]);
  });

  it('leaves a heap with little unused alone', () => {
    const { p, reducer, burst } = fakeProcess();
    burst(0, 110);
    expect(tickSeconds(reducer, 3, 120)).toEqual([]);
    expect(p.collections).toBe(0);
  });

  it('in a real process: gives back the committed heap of a burst once idle', async () => {
    const started = startIdleHeapReducer(createLogger('silent'), { checkEveryMs: 50, idleForMs: 200, idleBelow: 0.5, slackBytes: 8 * MB });
    try {
      let burst: Array<{ i: number; s: string }> | null = Array.from({ length: 400_000 }, (_, i) => ({ i, s: `node-${i}` }));
      const committedInBurst = process.memoryUsage().heapTotal;
      expect(burst.length).toBe(400_000);
      burst = null;
      const deadline = Date.now() + 10_000;
      while (started.reducer.count === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(started.reducer.count).toBe(1);
      expect(process.memoryUsage().heapTotal).toBeLessThan(committedInBurst - 8 * MB);
    } finally {
      started.stop();
    }
  });
});
