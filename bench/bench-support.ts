/**
 * Shared by bench/eventstore.ts and bench/saga.ts: flag parsing, statistics, table printing,
 * machine info, and a nats-server that lives only as long as one bench run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { JobPolicy, NodeSpec } from '../src/events/node-events.ts';
import { freeLoopbackPort, startNatsServer, type NatsProcess } from '../src/eventstore/nats-process.ts';
import { createLogger, type Logger } from '../src/logging/logger.ts';
import { playbookBundle } from '../src/ansible/playbook-bundle.ts';
import type { EventStore } from '../src/eventstore/event-store.ts';
import { createHetznerProvider } from '../src/providers/hetzner/hetzner-provider.ts';
import { ProvisionSaga, type ProvisionSagaOptions } from '../src/sagas/provision-saga.ts';
import { openHostKeyStore } from '../src/ssh-keys/host-key-store.ts';
import { generateOpenSshEd25519 } from '../src/ssh-keys/openssh-key.ts';
import { noopRunner } from '../test/support/noop-runner.ts';

/** `--name value` / `--name=value` flags, validated by a zod object whose keys are the flag names. */
export const parseFlags = <S extends z.ZodObject>(schema: S, argv: readonly string[] = process.argv.slice(2)): z.infer<S> => {
  const options = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const flags = Object.keys(schema.shape).map((k) => `--${k}`).join(' ');
    throw new Error(`bad flags: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')} (flags: ${flags})`);
  }
  return parsed.data;
};

/** A positive integer flag with a default; strings come from the command line. */
export const intFlag = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);

/** Monotonic milliseconds with sub-millisecond resolution. */
export const nowMs = (): number => performance.now();

export const median = (xs: readonly number[]): number => percentile(xs, 50);

/** Nearest-rank percentile: always an observed sample, never an interpolation. */
export const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
};

export const fmt = (x: number, digits = 0): string =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }).replace(/,/g, ' ') : String(x);

/** A Markdown table, padded so that it also reads well in a terminal; paste it into docs as is. */
export const table = (headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
};

export const verdict = (value: number, target: number, higherIsBetter = true): string =>
  (higherIsBetter ? value >= target : value <= target) ? 'MET' : 'NOT MET';

const sh = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch (e) {
    return `(${cmd} failed: ${e instanceof Error ? e.message : String(e)})`;
  }
};

export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(', ');

/** The facts docs/benchmarks.md asks for; printed at the top of every run. */
export const machineInfo = (): string =>
  [
    `date -u:      ${sh('date', ['-u'])}`,
    `nproc:        ${sh('nproc', [])} (availableParallelism ${availableParallelism()})`,
    `uname -r:     ${sh('uname', ['-r'])}`,
    `node:         ${process.version}`,
    `nats-server:  ${sh('nats-server', ['--version'])}`,
    `uptime:       ${sh('uptime', [])}`,
    'free -h:',
    ...sh('free', ['-h']).split('\n').map((l) => `  ${l}`),
  ].join('\n');

/** Benches log only errors, to stderr, so that stdout is just the report. */
export const benchLogger = (): Logger => createLogger(process.env.PRESSLUFT_LOG_LEVEL ?? 'error', process.stderr);

type Cleanup = () => Promise<void>;
const cleanups: Cleanup[] = [];
let exiting = false;

/** Runs cleanups (last registered first) even on Ctrl-C, so no nats-server or temp dir outlives the bench. */
const runCleanups = async (): Promise<void> => {
  while (cleanups.length > 0) await cleanups.pop()!().catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    if (exiting) return;
    exiting = true;
    void runCleanups().finally(() => process.exit(130));
  });
}

export const onCleanup = (c: Cleanup): void => {
  cleanups.push(c);
};

/** A bench's main: prints machine info, runs, cleans up, and sets the exit code. */
export const runBench = async (title: string, main: () => Promise<void>): Promise<void> => {
  process.stdout.write(`# ${title}\n\n\`\`\`\n${machineInfo()}\n\`\`\`\n\n`);
  try {
    await main();
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  } finally {
    exiting = true;
    await runCleanups();
  }
};

/** A private nats-server with JetStream on a free loopback port and a temp store, removed at cleanup. */
export const startBenchNats = async (): Promise<NatsProcess> => {
  const storeDir = await mkdtemp(join(tmpdir(), 'pressluft-bench-nats-'));
  onCleanup(() => rm(storeDir, { recursive: true, force: true }));
  const nats = await startNatsServer({ storeDir });
  onCleanup(() => nats.stop());
  return nats;
};

export const tempDir = async (prefix: string): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), `pressluft-bench-${prefix}-`));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
};

/** A saga worker against a simulator process with the no-op Ansible runner: what the orchestration benches measure. */
export const benchSaga = async (
  store: EventStore,
  sim: { url: string; token: string },
  o: Pick<ProvisionSagaOptions, 'consumerName' | 'concurrency' | 'onBoundary'> & { logger: Logger },
): Promise<ProvisionSaga> =>
  new ProvisionSaga({
    store,
    provider: createHetznerProvider({ endpoint: sim.url, token: sim.token, timeoutMs: 10_000, logger: o.logger }),
    runner: noopRunner,
    keyPair: generateOpenSshEd25519('pressluft-bench'),
    hostKeys: await openHostKeyStore({ dataDir: await tempDir('hostkeys'), encryptionKey: '5'.repeat(64) }),
    playbookBundle: await playbookBundle('ansible'),
    playbook: 'bench-noop.yml',
    ...o,
  });

/**
 * The Hetzner simulator as its own process (through its CLI), as the real API is remote:
 * in-process it would share the saga's event loop. Rate limits are lifted: we measure orchestration, not 429s.
 */
export const startSimulatorProcess = async (o: { actionDurationMs: number }): Promise<{ url: string; token: string; pid: number }> => {
  const port = await freeLoopbackPort();
  const token = `bench-${process.pid}`;
  const cli = join(import.meta.dirname, '..', 'src', 'simulators', 'hetzner', 'cli.ts');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', cli, '--host', '127.0.0.1', '--port', String(port), '--token', token,
      '--action-duration-ms', String(o.actionDurationMs), '--rate-limit', '100000000', '--rate-refill-per-second', '100000000'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('simulator did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    lines.on('line', (l) => {
      const m = /^export HCLOUD_ENDPOINT=(\S+)$/.exec(l);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { url, token, pid: child.pid ?? 0 };
};

/** A node spec and policy like the API's defaults; the name must be an RFC 1123 label. */
export const benchSpec = (name: string, sshPort = 22): NodeSpec => ({
  name,
  provider: 'hetzner',
  serverType: 'cx22',
  location: 'fsn1',
  image: 'ubuntu-24.04',
  sshUser: 'root',
  sshPort,
});

export const benchPolicy = (): JobPolicy => ({
  maxAttempts: 3,
  backoffMs: [60_000, 300_000, 900_000],
  jobTimeoutMs: 1_800_000,
  ansibleTimeoutMs: 1_500_000,
  actionTimeoutMs: 600_000,
});

/** user+system CPU seconds a process has used so far, from /proc (Linux); NaN when unreadable. */
export const cpuSeconds = (pid: number): number => {
  try {
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
};

/** The pid of our own nats-server (found by its port on the command line), to read its CPU time only. */
export const natsPid = (port: number): number => {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('nats-server') && argv.includes('-p') && argv[argv.indexOf('-p') + 1] === String(port)) return Number(d);
    } catch {
      // The process ended while we looked.
    }
  }
  return 0;
};

/** CPU seconds used by each named process between start() and the returned stop(). */
export const cpuMeter = (pids: Record<string, number>): (() => Record<string, number>) => {
  const self = process.cpuUsage();
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  return () => {
    const d = process.cpuUsage(self);
    return { 'this process': (d.user + d.system) / 1e6, ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - before[k]!])) };
  };
};
