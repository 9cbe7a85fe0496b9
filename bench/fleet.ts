/**
 * Fleet-scale bench (issue 13, part 4): one `pressluft serve` process on embedded defaults (its own
 * nats-server; the Hetzner simulator with 1 s actions, see FLEET_SIM), as a child process, so RSS is its own.
 *
 *   FLEET_N=10000 node --import tsx bench/fleet.ts       (npm run bench:fleet; FLEET_N for quick runs)
 *
 * It measures:
 *  (a) POST /v1/nodes accepted per second, 50 concurrent keep-alive clients, N requests, against a
 *      raw baseline measured in the same run: a bare fastify process on the same machine that parses
 *      the same JSON body and answers 202 with a body of the same size, driven by the same client;
 *  (b) the serve process's RSS (VmRSS from /proc; peak is VmHWM) while N nodes are provisioned and at
 *      rest once every job is terminal, and nats-server's;
 *  (c) provider requests per provision, from the simulator's own counters, with the hourly budget.
 *
 * The nodes keep the API's default sshPort 22: the simulator hands out 127.0.0.1, so each provision
 * makes every provider request (SSH key, create, action polls, server get) and then ends at the port
 * guard (TARGET_FORBIDDEN) without an Ansible run; 10 000 ansible-playbook processes would measure
 * Python for an hour on 2 cores. FLEET_ANSIBLE=1 instead points the nodes at a TCP listener and runs
 * the trivial local playbook (test/app/fixtures/provision-local.yml): for small N only.
 *
 * FLEET_SIM=outside|inside|both (default both, in that order): `outside` starts the simulator in its own
 * process on 127.0.0.1 (`pressluft hcloud-sim`, 1 s actions) and points serve at it with HCLOUD_ENDPOINT /
 * HCLOUD_TOKEN, as Hetzner is outside in production; `inside` is a new user's embedded default, the
 * simulator's 10 000 servers in the serve process. Each run prints its own tables, then a summary of both
 * (RSS at rest, heap, idle heap reductions, accepted/s vs the raw baseline, serve CPU ms per POST, load).
 * Every MALLOC_* variable that is set (glibc's malloc tunables, e.g. MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_,
 * MALLOC_MMAP_THRESHOLD_; docs/deployment.md, "Memory after a burst") is passed to the serve process.
 * FLEET_REST_MS sets how long the RSS at rest is sampled (default 10 000 ms).
 *
 * FLEET_ROLE=api runs only the POSTs, into a serve process without a saga: the API's own cost.
 *
 * The serve process runs the current src/ compiled by tsc into .cache/fleet (FLEET_BUILD=dist runs
 * dist/ as it is; FLEET_SRC_ROOT=/tmp/tree compiles that tree's src/ instead, e.g. a `git archive` of HEAD). FLEET_NODE_ARGS passes node flags to it (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`;
 * FLEET_HEAP_SNAPSHOT_DIR=/tmp/h writes a heap snapshot there at rest).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { freeLoopbackPort } from '../src/eventstore/nats-process.ts';
import { cpuSeconds, fmt, loadAverage, median, nowMs, onCleanup, runBench, table, tempDir, verdict } from './bench-support.ts';

const N = Number(process.env.FLEET_N ?? 10_000);
const CLIENTS = Number(process.env.FLEET_CLIENTS ?? 50);
const BASELINE_N = Number(process.env.FLEET_BASELINE_N ?? Math.min(N, 10_000));
const ANSIBLE = process.env.FLEET_ANSIBLE === '1';
/** Where the Hetzner simulator runs: `outside` (its own process, as Hetzner is in production), `inside` (the embedded default), or `both`, one after the other. */
const SIM_MODES = ((): Array<'inside' | 'outside'> => {
  const v = process.env.FLEET_SIM ?? 'both';
  if (v === 'inside' || v === 'outside') return [v];
  if (v === 'both') return ['outside', 'inside'];
  throw new Error(`FLEET_SIM must be inside, outside or both, not ${v}`);
})();
/** glibc's malloc tunables, passed through to the serve process when set (measured in docs/benchmarks.md, "Fleet scale"). */
const MALLOC_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_')));
const REST_MS = Number(process.env.FLEET_REST_MS ?? 10_000);
/** A directory: a heap snapshot of the serve process is written there at rest. */
const HEAP_DIR = process.env.FLEET_HEAP_SNAPSHOT_DIR;
const ROOT = join(import.meta.dirname, '..');
/** Whose src/ the serve process runs: this checkout, or FLEET_SRC_ROOT (e.g. a `git archive` of another commit). */
const SRC_ROOT = process.env.FLEET_SRC_ROOT ?? ROOT;
const TOKEN = 'fleet-bench-token-0123456789abcdef';
const HETZNER_BUDGET_PER_HOUR = 3_600;
const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number): string => fmt(kb / 1024, 1);

/**
 * The serve CLI as plain JavaScript: src/ of SRC_ROOT compiled by tsc into SRC_ROOT/.cache/fleet/dist,
 * one level below a root that links ansible/, scripts/ and node_modules/, so paths from import.meta.url hold.
 */
const buildServe = (): string => {
  if (process.env.FLEET_BUILD === 'dist') return join(ROOT, 'dist', 'cli', 'main.js');
  const out = join(SRC_ROOT, '.cache', 'fleet');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  try {
    execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(SRC_ROOT, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { cwd: SRC_ROOT, stdio: 'pipe' });
  } catch (e) {
    // A tree mid-edit may not typecheck; tsc still emits, and the run says so.
    process.stdout.write(`note: tsc reported errors (emitted anyway):\n${String((e as { stdout?: Buffer }).stdout ?? e).split('\n').slice(0, 5).join('\n')}\n\n`);
  }
  cpSync(join(SRC_ROOT, 'src', 'console', 'assets'), join(out, 'dist', 'console', 'assets'), { recursive: true });
  for (const dir of ['ansible', 'scripts']) symlinkSync(join(SRC_ROOT, dir), join(out, dir));
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  // The playbook bundle records the product version from package.json next to ansible/.
  symlinkSync(join(SRC_ROOT, 'package.json'), join(out, 'package.json'));
  return join(out, 'dist', 'cli', 'main.js');
};

const procStatus = (pid: number): Record<string, number> => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Object.fromEntries([...text.matchAll(/^(VmRSS|VmHWM):\s+(\d+) kB$/gm)].map((m) => [m[1]!, Number(m[2])]));
  } catch {
    return {};
  }
};

/** Resident memory split: anonymous (V8 heap, malloc) vs file-backed (the node binary, native modules). */
const rssSplit = (pid: number): { anonKb: number; fileKb: number } => {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? NaN);
    return { anonKb: field('Anonymous'), fileKb: field('Rss') - field('Anonymous') };
  } catch {
    return { anonKb: NaN, fileKb: NaN };
  }
};

const heapFigures = async (port: number): Promise<string> => {
  const t = await get(port, '/metrics');
  const v = (name: string): string => fmt(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(t)?.[1] ?? NaN) / 2 ** 20, 1);
  const spaces = [...t.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\S+)$/gm)]
    .filter((m) => Number(m[2]) > 2 ** 20)
    .map((m) => `${m[1]} ${v(`nodejs_heap_space_size_used_bytes\\{space="${m[1]}"\\}`)}/${fmt(Number(m[2]) / 2 ** 20, 1)}`);
  return `V8 heap used ${v('nodejs_heap_size_used_bytes')} MB of ${v('nodejs_heap_size_total_bytes')} MB (used/total MB by space: ${spaces.join(', ')}), external ${v('nodejs_external_memory_bytes')} MB`;
};

/** The embedded nats-server of a data dir: a descendant started with the config file inside it. */
const findNatsPid = (dataDir: string): number => {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('nats-server') && argv.some((a) => a.startsWith(dataDir))) return Number(d);
    } catch {
      // Gone while we looked.
    }
  }
  return 0;
};

const spawnChild = (args: string[], env: NodeJS.ProcessEnv): ChildProcess => {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, sleep(20_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
};

const waitFor = async <T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs: number, everyMs = 200): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
};

const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
const post = (port: number, path: string, body: string): Promise<{ status: number; text: string }> =>
  new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
const get = async (port: number, path: string): Promise<string> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.text();
};

const nodeBody = (i: number, sshPort: number | undefined): string =>
  JSON.stringify({ name: `fleet-${String(i).padStart(5, '0')}`, serverType: 'cx22', location: 'fsn1', ...(sshPort ? { sshPort } : {}) });

/** `count` POSTs from CLIENTS concurrent keep-alive clients; accepted per second and latency. */
const postLoad = async (port: number, count: number, sshPort?: number): Promise<{ perSecond: number; seconds: number; p50: number; p99: number; bad: string[] }> => {
  let next = 0;
  const latencies: number[] = [];
  const bad: string[] = [];
  const started = nowMs();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < count) {
        const i = next++;
        const t = nowMs();
        const r = await post(port, '/v1/nodes', nodeBody(i, sshPort));
        latencies.push(nowMs() - t);
        if (r.status !== 202 && bad.length < 5) bad.push(`${r.status} ${r.text.slice(0, 200)}`);
      }
    }),
  );
  const seconds = (nowMs() - started) / 1000;
  return { perSecond: count / seconds, seconds, p50: median(latencies), p99: [...latencies].sort((a, b) => a - b)[Math.floor(latencies.length * 0.99)] ?? NaN, bad };
};

/** One baseline run on its own process, stopped afterwards so that it takes no CPU from ours. */
const runBaseline = async (): Promise<Awaited<ReturnType<typeof postLoad>> & { cpu: number }> => {
  const basePort = await freeLoopbackPort();
  const base = spawnChild(['--input-type=module', '-e', BASELINE_SERVER], { PORT: String(basePort) });
  await waitFor('baseline listening', () => (base.exitCode === null ? post(basePort, '/v1/nodes', '{}').then(() => true, () => null) : null), 30_000);
  const r = await postLoad(basePort, BASELINE_N);
  const cpu = cpuSeconds(base.pid!);
  const gone = new Promise((done) => base.once('exit', done));
  base.kill('SIGTERM');
  await gone;
  return { ...r, cpu };
};

/** The raw baseline: bare fastify, JSON body parsed, 202 with a body the size of ours. */
const BASELINE_SERVER = `
import Fastify from 'fastify';
const app = Fastify({ logger: false });
app.post('/v1/nodes', async (req, reply) => reply.code(202).send({ nodeId: 'n_' + 'x'.repeat(26), jobId: 'j_' + 'x'.repeat(26), position: 12345 }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.stdout.write('listening\\n');
`;

const jobCounts = async (port: number): Promise<Record<string, number>> => {
  const text = await get(port, '/metrics');
  return Object.fromEntries([...text.matchAll(/^pressluft_jobs\{status="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
};

/** Samples VmRSS of the named pids every 250 ms. */
const rssSampler = (pids: Record<string, number>) => {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((k) => [k, []]));
  const timer = setInterval(() => {
    for (const [k, pid] of Object.entries(pids)) {
      const rss = procStatus(pid).VmRSS;
      if (rss) samples[k]!.push(rss);
    }
  }, 250);
  return { samples, stop: () => clearInterval(timer), reset: () => Object.values(samples).forEach((s) => s.splice(0)) };
};

const fakeSshd = async (): Promise<{ port: number; server: Server }> => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, server };
};

/** What the summary at the end shows of one run. */
interface FleetRun {
  sim: 'inside' | 'outside';
  restMb: number;
  simRestMb: number;
  heap: string;
  perSecond: number;
  baselineMean: number;
  cpuMsPerPost: number;
  baselineCpuMsPerPost: number;
  loadDuringPosts: string;
  heapReductions: number;
}

/** The simulator in its own process on loopback (the CLI's `hcloud-sim`), 1 s actions as the built-in one. */
const startOutsideSimulator = async (serveMain: string): Promise<{ endpoint: string; token: string; pid: number; child: ChildProcess }> => {
  const simPort = await freeLoopbackPort();
  const simToken = `fleet-sim-${TOKEN}`;
  const sim = spawnChild([serveMain, 'hcloud-sim', '--host', '127.0.0.1', '--port', String(simPort), '--token', simToken, '--action-duration-ms', '1000'], {});
  let out = '';
  sim.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-10_000)));
  const endpoint = await waitFor('simulator listening', () => /HCLOUD_ENDPOINT=(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out)?.[1] ?? (sim.exitCode !== null ? Promise.reject(new Error(`simulator exited:\n${out}`)) : null), 60_000);
  return { endpoint, token: simToken, pid: sim.pid!, child: sim };
};

const main = async (): Promise<void> => {
  process.stdout.write(`serve from ${process.env.FLEET_BUILD === 'dist' ? 'dist/' : `${SRC_ROOT}/src`}\nN=${N} nodes, ${CLIENTS} concurrent keep-alive clients (node:http Agent), baseline N=${BASELINE_N}; ${ANSIBLE ? 'local playbook runs' : 'sshPort 22: every provider request, then TARGET_FORBIDDEN, no Ansible'}; simulator ${SIM_MODES.join(', then ')}${Object.entries(MALLOC_ENV).map(([k, v]) => `; ${k}=${v}`).join('')}\n`);
  const serveMain = buildServe();
  const runs: FleetRun[] = [];
  for (const sim of SIM_MODES) runs.push(await fleetRun(serveMain, sim));
  process.stdout.write(`\n## Summary (uptime at the end: ${loadAverage()})\n\n`);
  process.stdout.write(
    `${table(
      ['simulator', 'serve RSS at rest MB', 'simulator process RSS at rest MB', 'serve heap at rest', 'idle heap reductions', 'accepted/s (raw baseline mean)', 'serve CPU ms per POST (baseline)', 'load during POSTs'],
      runs.map((r) => [
        r.sim === 'inside' ? 'inside serve (embedded default)' : 'own process on loopback',
        fmt(r.restMb, 1),
        r.sim === 'inside' ? '(in serve)' : fmt(r.simRestMb, 1),
        r.heap,
        fmt(r.heapReductions),
        `${fmt(r.perSecond)} (${fmt(r.baselineMean)})`,
        `${fmt(r.cpuMsPerPost, 2)} (${fmt(r.baselineCpuMsPerPost, 2)})`,
        r.loadDuringPosts,
      ]),
    )}\n`,
  );
};

const fleetRun = async (serveMain: string, simMode: 'inside' | 'outside'): Promise<FleetRun> => {
  process.stdout.write(`\n# Simulator ${simMode === 'inside' ? 'inside the serve process (embedded default)' : 'in its own process on loopback (as Hetzner is outside in production)'}\n\nload average before: ${loadAverage()}\n\n`);
  const outsideSim = simMode === 'outside' ? await startOutsideSimulator(serveMain) : null;
  const outsideSimChild = outsideSim?.child;

  // (a) the raw baseline before ours starts, and again once ours is at rest: the machine's load moves.
  const baselineBefore = await runBaseline();
  const loadAfterBaseline = loadAverage();

  const dataDir = await tempDir('fleet');
  const port = await freeLoopbackPort();
  const sshd = ANSIBLE ? await fakeSshd() : null;
  const env: NodeJS.ProcessEnv = {
    PRESSLUFT_DATA_DIR: join(dataDir, 'data'),
    PRESSLUFT_PORT: String(port),
    PRESSLUFT_API_TOKEN: TOKEN,
    ...MALLOC_ENV,
    ...(outsideSim ? { HCLOUD_ENDPOINT: outsideSim.endpoint, HCLOUD_TOKEN: outsideSim.token } : {}),
    ...(ANSIBLE ? { PRESSLUFT_PLAYBOOK: join(ROOT, 'test', 'app', 'fixtures', 'provision-local.yml') } : {}),
  };
  const nodeArgs = (process.env.FLEET_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (HEAP_DIR) nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_DIR}`);
  const serve = spawnChild([...nodeArgs, serveMain, 'serve'], env);
  let log = '';
  serve.stdout!.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.length > 1_000_000) log = log.slice(-200_000);
  });
  const logBytes = { n: 0 };
  const heapReductions = { n: 0, lines: [] as string[] };
  serve.stdout!.on('data', (d: Buffer) => {
    logBytes.n += d.length;
    for (const line of d.toString().split('\n').filter((l) => l.includes('heap reduced'))) {
      heapReductions.n++;
      heapReductions.lines.push(`${new Date().toISOString()} ${line}`);
    }
  });
  const simEndpoint = outsideSim
    ? outsideSim.endpoint.replace(/\/v1$/, '')
    : await waitFor('serve ready', () => /"endpoint":"(http:\/\/127\.0\.0\.1:\d+)\/v1"/.exec(log)?.[1] ?? (serve.exitCode !== null ? Promise.reject(new Error(`serve exited:\n${log}`)) : null), 120_000);
  await waitFor('API', () => (/API at http/.test(log) ? true : null), 120_000);
  const servePid = serve.pid!;
  const natsPid = await waitFor('nats-server pid', () => findNatsPid(join(dataDir, 'data')) || null, 10_000);
  const boot = { serve: procStatus(servePid).VmRSS ?? NaN, nats: procStatus(natsPid).VmRSS ?? NaN };
  const bootHeap = await heapFigures(port);
  const sampler = rssSampler({ serve: servePid, nats: natsPid, ...(outsideSim ? { sim: outsideSim.pid } : {}) });
  const cpu0 = { serve: cpuSeconds(servePid), nats: cpuSeconds(natsPid) };
  const loadBeforeOurs = loadAverage();

  const startAll = nowMs();
  const ours = await postLoad(port, N, sshd?.port);
  const cpuPost = { serve: cpuSeconds(servePid) - cpu0.serve, nats: cpuSeconds(natsPid) - cpu0.nats };
  const loadAfterOurs = loadAverage();
  process.stdout.write(`accepted ${N} in ${fmt(ours.seconds, 1)} s; waiting until every job is terminal\n`);
  let lastLine = 0;
  const counts = await waitFor(
    'every job terminal',
    async () => {
      const c = await jobCounts(port);
      const done = TERMINAL.reduce((s, k) => s + (c[k] ?? 0), 0);
      if (Date.now() - lastLine > 30_000) {
        lastLine = Date.now();
        process.stdout.write(`  ${new Date().toISOString()} terminal ${done}/${N}; serve RSS ${mb(procStatus(servePid).VmRSS ?? NaN)} MB; load ${loadAverage()}\n`);
      }
      return done >= N ? c : null;
    },
    3_600_000,
    2_000,
  );
  const allTerminalS = (nowMs() - startAll) / 1000;
  const terminalAt = new Date().toISOString();
  const peak = { serve: procStatus(servePid).VmHWM ?? NaN, nats: procStatus(natsPid).VmHWM ?? NaN };
  const cpuAll = { serve: cpuSeconds(servePid) - cpu0.serve, nats: cpuSeconds(natsPid) - cpu0.nats };

  // At rest: the saga has nothing left to do; let timers (30 s request timeouts) and GC settle, then sample for 10 s.
  // The idle heap reduction (src/app/idle-heap-reducer.ts) comes 15 s after the loop quietens, which at 10 000
  // nodes was 45 s after the last job; so wait for its log line (at most 120 s), then 10 s more, then sample.
  await sleep(35_000);
  const reducedBy = Date.now() + 85_000;
  while (heapReductions.n === 0 && Date.now() < reducedBy) await sleep(1_000);
  if (heapReductions.n > 0) await sleep(10_000);
  const restStartedAt = new Date().toISOString();
  sampler.reset();
  await sleep(REST_MS);
  sampler.stop();
  const rest = { serve: median(sampler.samples.serve!), nats: median(sampler.samples.nats!), sim: outsideSim ? median(sampler.samples.sim!) : NaN, serveMin: Math.min(...sampler.samples.serve!), serveMax: Math.max(...sampler.samples.serve!) };
  const restHeap = await heapFigures(port);
  const restSplit = rssSplit(servePid);

  if (HEAP_DIR) {
    process.kill(servePid, 'SIGUSR2');
    const file = await waitFor('heap snapshot written', () => {
      const f = readdirSync(HEAP_DIR).find((n) => n.endsWith('.heapsnapshot'));
      if (!f) return null;
      const size = statSync(join(HEAP_DIR, f)).size;
      return sleep(2000).then(() => (size > 0 && statSync(join(HEAP_DIR, f)).size === size ? f : null));
    }, 600_000, 1000);
    process.stdout.write(`heap snapshot at rest: ${join(HEAP_DIR, file)}\n`);
  }

  // (c) provider requests, counted by the simulator itself (after the RSS figures: this answer is large).
  const baselineAfter = await runBaseline();
  const sim = (await (await fetch(`${simEndpoint}/__admin/state`)).json()) as { servers: unknown[]; counters: { calls: Record<string, number>; rateLimited: number; serversCreated: number } };
  const calls = sim.counters.calls;
  const totalRequests = Object.values(calls).reduce((a, b) => a + b, 0) + sim.counters.rateLimited;
  const perProvision = totalRequests / N;

  process.stdout.write(`\nload average: before baseline (above), after baseline ${loadAfterBaseline}, before ours ${loadBeforeOurs}, after ours' POSTs ${loadAfterOurs}, at rest ${loadAverage()}\n\n`);
  process.stdout.write(`## (a) POST /v1/nodes, ${CLIENTS} concurrent clients\n\n`);
  process.stdout.write(
    `${table(
      ['path', 'requests', 'seconds', 'accepted/s', 'p50 ms', 'p99 ms', 'server CPU s'],
      [
        ...[['before ours', baselineBefore], ['after ours, at rest', baselineAfter]].map(([when, b]) => {
          const r = b as typeof baselineBefore;
          return [`raw baseline (${when as string}): bare fastify, same body in and out`, fmt(BASELINE_N), fmt(r.seconds, 2), fmt(r.perSecond), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.cpu, 1)];
        }),
        ['pressluft serve (saga running alongside)', fmt(N), fmt(ours.seconds, 2), fmt(ours.perSecond), fmt(ours.p50, 1), fmt(ours.p99, 1), `${fmt(cpuPost.serve, 1)} (+ nats ${fmt(cpuPost.nats, 1)})`],
      ],
    )}\n\n`,
  );
  const bad = [...ours.bad, ...baselineBefore.bad, ...baselineAfter.bad];
  if (bad.length) process.stdout.write(`non-202 answers (first few): ${bad.join(' | ')}\n\n`);

  process.stdout.write(`## (b) memory, ${N} nodes\n\n`);
  process.stdout.write(
    `${table(
      ['process', 'RSS after boot MB', 'peak RSS (VmHWM) MB', `RSS at rest MB (median of ${REST_MS / 1000} s)`, 'CPU s, whole run'],
      [
        ['pressluft serve (all)', mb(boot.serve), mb(peak.serve), `${mb(rest.serve)} (min ${mb(rest.serveMin)}, max ${mb(rest.serveMax)})`, fmt(cpuAll.serve, 1)],
        ['nats-server', mb(boot.nats), mb(peak.nats), mb(rest.nats), fmt(cpuAll.nats, 1)],
        ...(outsideSim ? [['Hetzner simulator (own process)', '', mb(procStatus(outsideSim.pid).VmHWM ?? NaN), mb(rest.sim), fmt(cpuSeconds(outsideSim.pid), 1)]] : []),
      ],
    )}\n\n`,
  );
  process.stdout.write(`serve after boot: ${bootHeap}\n`);
  process.stdout.write(`idle heap reductions logged by serve: ${heapReductions.n} (all terminal at ${terminalAt}; RSS at rest sampled from ${restStartedAt})\n${heapReductions.lines.map((l) => `  ${l}\n`).join('')}`);
  process.stdout.write(`serve at rest: ${restHeap}; RSS anonymous ${mb(restSplit.anonKb)} MB, file-backed ${mb(restSplit.fileKb)} MB; log written ${fmt(logBytes.n / 2 ** 20, 1)} MB\n`);
  process.stdout.write(`jobs: ${JSON.stringify(counts)}; all terminal ${fmt(allTerminalS, 1)} s after the first POST\n\n`);

  process.stdout.write(`## (c) provider requests\n\n`);
  process.stdout.write(`${table(['operation', 'requests', 'per provision'], Object.entries(calls).sort().map(([op, n]) => [op, fmt(n), fmt(n / N, 2)]))}\n\n`);
  process.stdout.write(`429s: ${sim.counters.rateLimited}; servers created ${sim.counters.serversCreated} for ${N} nodes\n`);
  process.stdout.write(`total ${fmt(totalRequests)} requests = ${fmt(perProvision, 2)} per provision; at Hetzner's ${fmt(HETZNER_BUDGET_PER_HOUR)} requests/h per project: ${fmt(HETZNER_BUDGET_PER_HOUR / perProvision)} provisions/h\n\n`);

  // Ours ran between the two baselines: the ratio is against their mean, and each one is printed too.
  const baselineMean = (baselineBefore.perSecond + baselineAfter.perSecond) / 2;
  const ratio = ours.perSecond / baselineMean;
  const ratios = `${fmt(ratio, 2)}x the raw baseline's mean; ${fmt(ours.perSecond / baselineBefore.perSecond, 2)}x before, ${fmt(ours.perSecond / baselineAfter.perSecond, 2)}x after`;
  process.stdout.write(
    `${table(
      ['metric', 'value', 'target', 'verdict'],
      [
        ['RSS of serve at rest after N nodes', `${mb(rest.serve)} MB`, '<= 200 MB', verdict(rest.serve / 1024, 200, false)],
        ['POST /v1/nodes accepted/s', `${fmt(ours.perSecond)} (${ratios})`, '>= 1 000', verdict(ours.perSecond, 1000)],
        ['provider requests per provision', fmt(perProvision, 2), '<= 3', verdict(perProvision, 3, false)],
        ['serve CPU per accepted POST (saga alongside)', `${fmt((1000 * cpuPost.serve) / N, 2)} ms (raw baseline ${fmt((1000 * (baselineBefore.cpu + baselineAfter.cpu)) / (2 * BASELINE_N), 2)} ms)`, '< 1 ms for 1 000/s on one core', ''],
      ],
    )}\n`,
  );
  // The next run must not share the cores with this one.
  await stopChild(serve);
  if (outsideSimChild) await stopChild(outsideSimChild);
  return {
    sim: simMode,
    restMb: rest.serve / 1024,
    simRestMb: rest.sim / 1024,
    heap: restHeap.replace(/ \(used\/total MB by space.*\)/, ''),
    perSecond: ours.perSecond,
    baselineMean,
    cpuMsPerPost: (1000 * cpuPost.serve) / N,
    baselineCpuMsPerPost: (1000 * (baselineBefore.cpu + baselineAfter.cpu)) / (2 * BASELINE_N),
    loadDuringPosts: `${loadBeforeOurs} -> ${loadAfterOurs}`,
    heapReductions: heapReductions.n,
  };
};

const stopChild = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, sleep(20_000)]);
};

/**
 * FLEET_ROLE=api: the POSTs alone, into a serve process without a saga (PRESSLUFT_ROLE=api), so the
 * API's own cost per request shows apart from the provisioning it sets off. A diagnostic, not the target.
 */
const apiOnly = async (): Promise<void> => {
  const serveMain = buildServe();
  const before = await runBaseline();
  const dataDir = await tempDir('fleet-api');
  const port = await freeLoopbackPort();
  const nodeArgs = (process.env.FLEET_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const serve = spawnChild([...nodeArgs, serveMain, 'serve'], { PRESSLUFT_DATA_DIR: join(dataDir, 'data'), PRESSLUFT_PORT: String(port), PRESSLUFT_API_TOKEN: TOKEN, PRESSLUFT_ROLE: 'api' });
  let log = '';
  serve.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-100_000)));
  await waitFor('API', () => (/API at http/.test(log) ? true : serve.exitCode !== null ? Promise.reject(new Error(`serve exited:\n${log}`)) : null), 120_000);
  const cpu0 = cpuSeconds(serve.pid!);
  const ours = await postLoad(port, N);
  const cpu = cpuSeconds(serve.pid!) - cpu0;
  const after = await runBaseline();
  process.stdout.write(`${table(['path', 'requests', 'accepted/s', 'p50 ms', 'p99 ms', 'server CPU ms per request'], [
    ['raw baseline, before', fmt(BASELINE_N), fmt(before.perSecond), fmt(before.p50, 1), fmt(before.p99, 1), fmt((1000 * before.cpu) / BASELINE_N, 2)],
    ['pressluft serve, role api (no saga)', fmt(N), fmt(ours.perSecond), fmt(ours.p50, 1), fmt(ours.p99, 1), fmt((1000 * cpu) / N, 2)],
    ['raw baseline, after', fmt(BASELINE_N), fmt(after.perSecond), fmt(after.p50, 1), fmt(after.p99, 1), fmt((1000 * after.cpu) / BASELINE_N, 2)],
  ])}\n\n${fmt(ours.perSecond / ((before.perSecond + after.perSecond) / 2), 2)}x the raw baseline's mean; load average now ${loadAverage()}\n`);
  if (ours.bad.length) process.stdout.write(`non-202 answers (first few): ${ours.bad.join(' | ')}\n`);
};

await runBench('Fleet scale: one serve process, N nodes', process.env.FLEET_ROLE === 'api' ? apiOnly : main);
