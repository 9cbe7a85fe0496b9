import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** `node bin/pressluft.js …` as a real child process, as a service manager would run it. */
export const BIN = fileURLToPath(new URL('../../bin/pressluft.js', import.meta.url));
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export interface Running {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the CLI and resolves once `ready` matches its stdout; rejects if it exits first. */
export const spawnCli = async (args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 60_000): Promise<Running & { match: RegExpExecArray }> => {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args[0]} not ready after ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited early (${code ?? signal}):\n${out}`));
    });
  });
  return { child, pid: child.pid!, output: () => out, exited, match };
};

const readText = (path: string): Promise<string | null> => readFile(path, 'utf8').catch(() => null);

/** pid → [ppid, start time] for every live process, from /proc. The start time tells a reused pid apart. */
export const processTable = async (): Promise<Map<number, { ppid: number; start: string; argv: string[] }>> => {
  const table = new Map<number, { ppid: number; start: string; argv: string[] }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readText(`/proc/${entry}/stat`);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const argv = ((await readText(`/proc/${entry}/cmdline`)) ?? '').split('\0').filter(Boolean);
    table.set(Number(entry), { ppid: Number(fields[1]), start: fields[19] ?? '', argv });
  }
  return table;
};

/**
 * Watches a process tree while it runs: every descendant ever seen is remembered, so that after
 * the root is gone the test can ask which of them still live (reparented orphans included).
 */
export const watchDescendants = (rootPid: number, everyMs = 100) => {
  const seen = new Map<number, { start: string; argv: string[] }>();
  const sample = async (): Promise<void> => {
    const table = await processTable();
    const inTree = new Set([rootPid]);
    // Parents come before children often enough that a few passes settle the closure.
    for (let pass = 0; pass < 6; pass++) for (const [pid, p] of table) if (inTree.has(p.ppid)) inTree.add(pid);
    for (const pid of inTree) if (pid !== rootPid && table.has(pid)) seen.set(pid, { start: table.get(pid)!.start, argv: table.get(pid)!.argv });
  };
  const timer = setInterval(() => void sample(), everyMs);
  return {
    sample,
    stop: () => clearInterval(timer),
    seen: () => [...seen.entries()].map(([pid, p]) => ({ pid, ...p })),
    /** Descendants seen earlier that still run (same pid and start time). */
    survivors: async () => {
      const table = await processTable();
      return [...seen.entries()].filter(([pid, p]) => table.get(pid)?.start === p.start).map(([pid, p]) => ({ pid, argv: p.argv.join(' ') }));
    },
  };
};
