import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';

/**
 * A nats-server child process with JetStream on loopback. `npm start` uses it when NATS_URL
 * is unset, and the test harness spawns one per suite. It never listens beyond 127.0.0.1.
 */
export interface NatsProcess {
  url: string;
  port: number;
  storeDir: string;
  /** SIGKILL, as a crash would. The store survives. */
  kill(): Promise<void>;
  /** Start again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

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

const waitFor = async (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
};

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));

export const startNatsServer = async (opts: { storeDir: string; port?: number; binary?: string }): Promise<NatsProcess> => {
  const port = opts.port ?? (await freeLoopbackPort());
  await mkdir(opts.storeDir, { recursive: true });
  let child: ChildProcess | null = null;
  let lastStderr = '';

  const launch = async (): Promise<void> => {
    const proc = spawn(opts.binary ?? 'nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', opts.storeDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr?.on('data', (d: Buffer) => {
      lastStderr = (lastStderr + d.toString()).slice(-4000);
    });
    child = proc;
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${lastStderr}`)));
    });
    await Promise.race([waitFor(() => canConnect(port), 10_000, `nats-server on 127.0.0.1:${port}`), failed]);
    failed.catch(() => undefined);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    child = null;
    c.kill('SIGKILL');
    await exited(c);
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: opts.storeDir,
    kill,
    restart: launch,
    stop: async () => {
      const c = child;
      if (!c) return;
      child = null;
      c.kill('SIGTERM');
      await Promise.race([exited(c), new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await exited(c);
      }
    },
  };
};
