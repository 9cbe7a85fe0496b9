import { readdir, readFile, rm } from 'node:fs/promises';
import { AppError } from '../errors/app-error.ts';

export class NatsStoreInUse extends AppError {
  constructor(storeDir: string, serverPid: number, ownerPid: number) {
    super(
      'NATS_STORE_IN_USE',
      `the event store ${storeDir} is served by nats-server pid ${serverPid}, owned by the live process ${ownerPid}; stop that process first (one server per store)`,
      false,
      { storeDir, serverPid, ownerPid },
    );
  }
}

const pidFileSchema = (v: unknown): { serverPid: number; ownerPid: number } | null => {
  const o = v as { serverPid?: unknown; ownerPid?: unknown } | null;
  return o && Number.isInteger(o.serverPid) && Number.isInteger(o.ownerPid) ? { serverPid: o.serverPid as number, ownerPid: o.ownerPid as number } : null;
};

const readText = (path: string): Promise<string | null> => readFile(path, 'utf8').catch(() => null);

/** The parent pid from /proc/<pid>/stat (field 4; the command name before it may hold spaces). */
export const parentPidOf = async (pid: number): Promise<number | null> => {
  const stat = await readText(`/proc/${pid}/stat`);
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields?.[1] ? Number(fields[1]) : null;
};

/** Every live process whose command line names this config file: the servers on this store. */
export const serversUsingConfig = async (configFile: string): Promise<number[]> => {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readText(`/proc/${entry}/cmdline`))?.split('\0') ?? [];
    if (argv.some((a) => a.endsWith('nats-server')) && argv.includes(configFile)) pids.push(Number(entry));
  }
  return pids;
};

/** True while a process with this pid exists (signal 0 checks without sending anything). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const waitGone = async (pid: number, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
};

/**
 * Before a server starts on a store: a server that still runs on it under its recorded, live
 * owner means another pressluft process serves this store (refused). Any other server on it is
 * an orphan of a crashed owner: it is stopped (SIGTERM, then SIGKILL), because two servers on
 * one store disagree on the log and lose acknowledged messages.
 */
export const stopStaleServers = async (o: { configFile: string; pidFile: string; storeDir: string; onStale?: (pid: number) => void }): Promise<void> => {
  const recorded = pidFileSchema(JSON.parse((await readText(o.pidFile)) ?? 'null'));
  for (const pid of await serversUsingConfig(o.configFile)) {
    const parent = await parentPidOf(pid);
    if (recorded?.serverPid === pid && parent === recorded.ownerPid && parent !== process.pid) throw new NatsStoreInUse(o.storeDir, pid, parent);
    o.onStale?.(pid);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    if (!(await waitGone(pid, 5000))) {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid, 5000);
    }
  }
  await rm(o.pidFile, { force: true });
};
