import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AppError } from '../errors/app-error.ts';
import type { NatsCredentials } from './nats-credentials.ts';
import { renderNatsServerConfig, type NatsClusterMember } from './nats-server-config.ts';
import { stopStaleServers } from './nats-stale-server.ts';

/**
 * A nats-server child process with JetStream on loopback. `npm start` uses it when NATS_URL
 * is unset, and the test harness spawns one per suite. It never listens beyond 127.0.0.1.
 *
 * One server per store, always (ADR 0030):
 * - `setpriv --pdeathsig KILL` makes the kernel kill it when its parent dies, even by SIGKILL;
 * - `flock -n -F` holds an exclusive lock on `<storeDir>/nats-server.lock` for the server's whole
 *   life (the lock fd survives the exec), so a second server on the store cannot start;
 * - a server left on the store by a dead owner is found (config path in /proc/<pid>/cmdline,
 *   pid file) and stopped before a new one starts.
 */
export interface NatsProcess {
  url: string;
  port: number;
  storeDir: string;
  configFile: string;
  /** The server's pid, while it runs. */
  readonly pid: number | null;
  /** SIGKILL, as a crash would. The store survives. */
  kill(): Promise<void>;
  /** Start again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsProcessOptions {
  storeDir: string;
  port?: number;
  binary?: string;
  /** Users and permissions; absent means no authorization (test harness default only). */
  credentials?: NatsCredentials;
  subjectPrefix?: string;
  /** Join a loopback cluster (tests and benchmarks only; the embedded server is always alone). */
  cluster?: NatsClusterMember;
  /** One line of the server's own log (stderr) with its level. */
  onLog?: (level: 'debug' | 'info' | 'warn' | 'error', line: string) => void;
  /** The server exited without being asked to: the caller decides what that means. */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class NatsServerFailed extends AppError {
  constructor(message: string, details: Record<string, unknown>) {
    super('NATS_SERVER_FAILED', message, false, details);
  }
}

/** flock's exit code when the store's lock is held by someone else. */
const LOCK_CONFLICT = 75;

export const freeLoopbackPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));

const levelOf = (line: string): 'debug' | 'info' | 'warn' | 'error' =>
  /\[(ERR|FTL)\]/.test(line) ? 'error' : /\[WRN\]/.test(line) ? 'warn' : /\[INF\]/.test(line) ? 'info' : 'debug';

export const startNatsServer = async (opts: NatsProcessOptions): Promise<NatsProcess> => {
  const port = opts.port ?? (await freeLoopbackPort());
  await mkdir(opts.storeDir, { recursive: true, mode: 0o700 });
  const configFile = join(opts.storeDir, 'nats-server.conf');
  const pidFile = join(opts.storeDir, 'nats-server.pid');
  const lockFile = join(opts.storeDir, 'nats-server.lock');
  const config = renderNatsServerConfig({ port, storeDir: opts.storeDir, credentials: opts.credentials, subjectPrefix: opts.subjectPrefix ?? 'pressluft', cluster: opts.cluster });
  await writeFile(configFile, config, { mode: 0o600 });
  let child: ChildProcess | null = null;
  let lastStderr = '';

  const launch = async (): Promise<void> => {
    await stopStaleServers({ configFile, pidFile, storeDir: opts.storeDir, onStale: (pid) => opts.onLog?.('warn', `stopping a stale nats-server (pid ${pid}) left on this store by a dead owner`) });
    const argv = ['--pdeathsig', 'KILL', 'flock', '-n', '-F', '-E', String(LOCK_CONFLICT), lockFile, opts.binary ?? 'nats-server', '-c', configFile];
    // The server gets no environment of ours: HCLOUD_TOKEN, PRESSLUFT_SECRET_KEY and the API token stay in this process.
    const proc = spawn('setpriv', argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
    child = proc;
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      lastStderr = `${lastStderr}${line}\n`.slice(-4000);
      opts.onLog?.(levelOf(line), line);
    });
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) =>
        reject(
          code === LOCK_CONFLICT
            ? new NatsServerFailed(`another nats-server holds the lock on ${opts.storeDir} (${lockFile})`, { storeDir: opts.storeDir })
            : new NatsServerFailed(`nats-server exited with ${code}: ${lastStderr}`, { storeDir: opts.storeDir, code }),
        ),
      );
    });
    failed.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    const ready = (async () => {
      while (!(await canConnect(port))) {
        if (Date.now() > deadline) throw new NatsServerFailed(`timed out after 10000 ms waiting for nats-server on 127.0.0.1:${port}`, { port });
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    try {
      await Promise.race([ready, failed]);
    } catch (e) {
      child = null;
      proc.kill('SIGKILL');
      throw e;
    }
    await writeFile(pidFile, `${JSON.stringify({ serverPid: proc.pid, ownerPid: process.pid, configFile })}\n`, { mode: 0o600 });
    proc.once('exit', (code, signal) => {
      if (child !== proc) return;
      child = null;
      opts.onUnexpectedExit?.(code, signal);
    });
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c) return;
    child = null;
    c.kill(signal);
    if (signal === 'SIGTERM') {
      await Promise.race([exited(c), new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    await exited(c);
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: opts.storeDir,
    configFile,
    get pid() {
      return child?.pid ?? null;
    },
    kill: () => halt('SIGKILL'),
    restart: launch,
    stop: async () => {
      await halt('SIGTERM');
      await rm(pidFile, { force: true });
    },
  };
};
