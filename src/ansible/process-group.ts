import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** Live (non-zombie) pids whose process group is `pgid`, read from /proc (Linux only). */
export const livePids = async (pgid: number): Promise<number[]> => {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // comm (field 2) may contain spaces and parens; the fields after the last ')' are fixed.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== 'Z' && Number(pgrp) === pgid) pids.push(Number(entry));
  }
  return pids;
};

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
};

const waitEmpty = async (pgid: number, ms: number): Promise<boolean> => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if ((await livePids(pgid)).length === 0) return true;
    await sleep(50);
  }
  return (await livePids(pgid)).length === 0;
};

/** SIGTERM to the whole group, SIGKILL after `graceMs`, and wait until nothing of it is left. */
export const killGroup = async (pgid: number, graceMs: number): Promise<void> => {
  signalGroup(pgid, 'SIGTERM');
  if (await waitEmpty(pgid, graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  if (!(await waitEmpty(pgid, 5_000))) throw new Error(`process group ${pgid} survived SIGKILL`);
};

export interface GroupRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Epoch ms after which the group is killed and the run reports `timeout`. */
  deadline: number;
  signal?: AbortSignal;
  graceMs: number;
  onOutput: (stream: 'stdout' | 'stderr', line: string) => void;
  /** When set, fd 3 is a pipe and each line written to it arrives here. */
  onFd3Line?: (line: string) => void;
}

export interface GroupRunResult {
  exitCode: number | null;
  stop: 'timeout' | 'cancelled' | null;
}

/**
 * Runs a command as the leader of its own process group (detached → setsid), so a timeout or
 * cancellation can kill every descendant (workers, ssh) with one signal to the group.
 */
export const runInGroup = async (cmd: string, args: string[], o: GroupRunOptions): Promise<GroupRunResult> => {
  if (o.signal?.aborted) return { exitCode: null, stop: 'cancelled' };
  const child = spawn(cmd, args, {
    cwd: o.cwd,
    env: o.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', o.onFd3Line ? 'pipe' : 'ignore'],
  });
  const closed = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  const pgid = child.pid;
  if (pgid === undefined) return { exitCode: await closed, stop: null };

  const lines = (input: Readable | null, onLine: (line: string) => void) => {
    if (input) createInterface({ input, crlfDelay: Infinity }).on('line', onLine);
  };
  lines(child.stdout, (l) => o.onOutput('stdout', l));
  lines(child.stderr, (l) => o.onOutput('stderr', l));
  // stdio[3] is typed as a duplex-ish union; with 'pipe' on an output fd it is the read end.
  if (o.onFd3Line) lines(child.stdio[3] as Readable | null, o.onFd3Line);

  let stop: GroupRunResult['stop'] = null;
  let killing: Promise<void> | null = null;
  const stopWith = (reason: 'timeout' | 'cancelled') => {
    if (killing) return;
    stop = reason;
    killing = killGroup(pgid, o.graceMs);
  };
  const timer = setTimeout(() => stopWith('timeout'), Math.max(0, o.deadline - Date.now()));
  const onAbort = () => stopWith('cancelled');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const exitCode = await closed;
    // A normal exit may still leave stragglers behind; nothing of the group outlives the run.
    await (killing ?? ((await livePids(pgid)).length > 0 ? killGroup(pgid, o.graceMs) : Promise.resolve()));
    return { exitCode, stop };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
};
