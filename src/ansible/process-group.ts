import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

interface ProcInfo {
  pid: number;
  pgrp: number;
  cmdline: string;
}

/** Live (non-zombie) processes matching `pick`, read from /proc (Linux only). */
const liveProcs = async (pick: (p: ProcInfo) => boolean): Promise<number[]> => {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // comm (field 2) may contain spaces and parens; the fields after the last ')' are fixed.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (pick({ pid: Number(entry), pgrp: Number(pgrp), cmdline })) pids.push(Number(entry));
  }
  return pids;
};

/** Live pids whose process group is `pgid`. */
const livePids = (pgid: number): Promise<number[]> => liveProcs((p) => p.pgrp === pgid);

const signalAll = (pids: number[], signal: NodeJS.Signals): void => {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
};

/** SIGTERM, SIGKILL after `graceMs`, then wait until `find` comes back empty. */
const terminate = async (find: () => Promise<number[]>, signal: (s: NodeJS.Signals) => Promise<void>, graceMs: number, what: string) => {
  const emptyWithin = async (ms: number) => {
    const until = Date.now() + ms;
    while ((await find()).length > 0) {
      if (Date.now() > until) return false;
      await sleep(50);
    }
    return true;
  };
  await signal('SIGTERM');
  if (await emptyWithin(graceMs)) return;
  await signal('SIGKILL');
  if (!(await emptyWithin(5_000))) throw new Error(`${what} survived SIGKILL`);
};

/** SIGTERM to the whole group, SIGKILL after `graceMs`, and wait until nothing of it is left. */
export const killGroup = (pgid: number, graceMs: number): Promise<void> =>
  terminate(
    () => livePids(pgid),
    async (s) => signalAll([-pgid], s),
    graceMs,
    `process group ${pgid}`,
  );

/**
 * Kills processes whose command line mentions `marker` (a per-run path). ssh's ControlPersist
 * master daemonises out of the process group but names its control socket in its title.
 */
export const killByCmdline = (marker: string, graceMs: number): Promise<void> => {
  const find = () => liveProcs((p) => p.pid !== process.pid && p.cmdline.includes(marker));
  return terminate(find, async (s) => signalAll(await find(), s), graceMs, `processes mentioning ${marker}`);
};

/**
 * Everything a run left: the process groups it leads (ansible-playbook and every worker and module
 * below it, whatever their command lines) and then any process that still names `marker`.
 * Only leaders (pid = pgid) have their group killed, never a group we merely share.
 */
export const killRunProcesses = async (marker: string, graceMs: number): Promise<void> => {
  const leaders = await liveProcs((p) => p.pid !== process.pid && p.pid === p.pgrp && p.cmdline.includes(marker));
  await Promise.all(leaders.map((pgid) => killGroup(pgid, graceMs)));
  await killByCmdline(marker, graceMs);
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
