import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { embeddedNatsFiles } from '../../src/app/embedded-nats.ts';
import { freeLoopbackPort } from '../../src/eventstore/nats-process.ts';
import { serversUsingConfig } from '../../src/eventstore/nats-stale-server.ts';
import { fakeSshd } from '../support/saga-harness.ts';
import { fixture, spawnCli, watchDescendants, type Running } from './serve-harness.ts';

const TOKEN = 'serve-process-test-token-0123456789';
const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const dirs: string[] = [];
let sim: Running & { match: RegExpExecArray };
let simEnv: { HCLOUD_ENDPOINT: string; HCLOUD_TOKEN: string; origin: string };
let sshd: { port: number; close(): Promise<void> };

beforeAll(async () => {
  sshd = await fakeSshd();
  // Its own process: the built-in simulator would forget every server at each kill of serve.
  sim = await spawnCli(['hcloud-sim', '--port', String(await freeLoopbackPort()), '--token', 'sim-token-serve-process', '--action-duration-ms', '0'], {}, /export HCLOUD_TOKEN=(\S+)/);
  const endpoint = /export HCLOUD_ENDPOINT=(\S+)/.exec(sim.output())![1]!;
  simEnv = { HCLOUD_ENDPOINT: endpoint, HCLOUD_TOKEN: sim.match[1]!, origin: new URL(endpoint).origin };
}, 60_000);
afterAll(async () => {
  for (const r of started) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  sim?.child.kill('SIGTERM');
  await sim?.exited;
  await sshd?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const serveEnv = (dataDir: string, port: number, playbook: string): NodeJS.ProcessEnv => ({
  PRESSLUFT_DATA_DIR: dataDir,
  PRESSLUFT_PORT: String(port),
  PRESSLUFT_API_TOKEN: TOKEN,
  PRESSLUFT_LOG_LEVEL: 'warn',
  PRESSLUFT_PLAYBOOK: playbook,
  PRESSLUFT_ACK_WAIT_MS: '2000',
  PRESSLUFT_BACKOFF_MS: '500',
  HCLOUD_ENDPOINT: simEnv.HCLOUD_ENDPOINT,
  HCLOUD_TOKEN: simEnv.HCLOUD_TOKEN,
});

/**
 * Starts serve and waits for its API. Under heavy CPU load on this shared machine fastify's 10 s
 * plugin timeout can fire during boot (reported to the API's owner); only that start failure is
 * retried, twice at most. Every other early exit fails the test.
 */
/** Every serve this file started: a failed test must not leave one running. */
const started: Running[] = [];
const serve = async (env: NodeJS.ProcessEnv): Promise<Running> => {
  for (let attempt = 1; ; attempt++) {
    try {
      const running = await spawnCli(['serve'], env, /API at (http:\/\/\S+);/, 90_000);
      started.push(running);
      return running;
    } catch (e) {
      if (attempt >= 3 || !/Plugin did not start in time/.test(String(e))) throw e;
      trace(`serve start hit fastify's plugin timeout (attempt ${attempt}); starting again`);
    }
  }
};

const api = async (base: string, path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });

/** Retries through a control plane that is down or being killed; an idempotency key makes a retried create the same create. */
const createNode = async (base: string, name: string, sshPort: number): Promise<{ nodeId: string; jobId: string; position: number }> => {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const res = await api(base, '/v1/nodes', { method: 'POST', headers: { 'idempotency-key': `create-${name}` }, body: JSON.stringify({ name, serverType: 'cx22', location: 'fsn1', sshPort }) });
      if (res.status === 202) return (await res.json()) as { nodeId: string; jobId: string; position: number };
      throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
    } catch (e) {
      if (!(e instanceof TypeError) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Progress lines for a slow run: which kill, how long each restart took. */
const trace = (msg: string): void => void process.stderr.write(`[crash-loop ${new Date().toISOString()}] ${msg}\n`);

// One simulator process for the file; each test starts from an empty provider (a new data dir has a new SSH key).
beforeEach(async () => {
  expect((await fetch(`${simEnv.origin}/__admin/reset`, { method: 'POST' })).status).toBe(204);
});

describe('pressluft serve as a real process', () => {
  it('survives 10 kill -9 of its own pid during 30 provisions: one nats-server per store, no acknowledged write lost, every job ends', { timeout: 420_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-crash-'));
    dirs.push(dir);
    const port = await freeLoopbackPort();
    const base = `http://127.0.0.1:${port}`;
    const env = serveEnv(dir, port, fixture('provision-local.yml'));
    const configFile = join(embeddedNatsFiles(dir).storeDir, 'nats-server.conf');
    // At every moment at most one server on the store: a /proc scan back to back, never overlapping.
    let maxServers = 0;
    let scans = 0;
    let monitoring = true;
    const monitor = (async () => {
      while (monitoring) {
        maxServers = Math.max(maxServers, (await serversUsingConfig(configFile)).length);
        scans++;
        await sleep(10);
      }
    })();

    let current = await serve(env);
    const acknowledged: Array<{ nodeId: string; jobId: string; position: number; name: string }> = [];
    const submitting = (async () => {
      for (let i = 0; i < 30; i++) {
        const name = `crash-node-${i}`;
        acknowledged.push({ ...(await createNode(base, name, sshd.port)), name });
        await sleep(150);
      }
    })();
    const orphanedServers: number[] = [];
    for (let k = 0; k < 10; k++) {
      await sleep(800 + ((k * 337) % 700));
      const natsPid = JSON.parse(await readFile(join(embeddedNatsFiles(dir).storeDir, 'nats-server.pid'), 'utf8')).serverPid as number;
      // The OOM killer's way: one pid, not the process group.
      process.kill(current.pid, 'SIGKILL');
      await current.exited;
      // The kernel kills the child with its parent (pdeathsig); give it a moment (15 s on a loaded machine: an unreaped zombie counts as alive), then it must be gone.
      for (let t = 0; t < 300 && isAlive(natsPid); t++) await sleep(50);
      if (isAlive(natsPid)) orphanedServers.push(natsPid);
      const t0 = Date.now();
      current = await serve(env);
      trace(`kill ${k + 1}: restarted in ${Date.now() - t0} ms; ${acknowledged.length} provisions acknowledged`);
    }
    await submitting;
    trace('all 30 acknowledged');
    expect(acknowledged).toHaveLength(30);

    // Every job ends.
    const deadline = Date.now() + 90_000;
    const statuses = new Map<string, string>();
    while (Date.now() < deadline && statuses.size < acknowledged.length) {
      for (const a of acknowledged) {
        if (statuses.has(a.jobId)) continue;
        const job = (await (await api(base, `/v1/jobs/${a.jobId}`)).json()) as { status: string };
        if (TERMINAL.includes(job.status)) statuses.set(a.jobId, job.status);
      }
      await sleep(250);
    }
    expect(acknowledged.filter((a) => !statuses.has(a.jobId)).map((a) => a.jobId)).toEqual([]);
    expect([...statuses.values()].filter((s) => s !== 'succeeded')).toEqual([]);

    // Every acknowledged position still holds that node's create, read straight from the log as an operator.
    const files = embeddedNatsFiles(dir);
    const creds = JSON.parse(await readFile(files.credentials, 'utf8')) as { operator: { user: string; password: string } };
    const nc = await connect({ servers: (await readFile(files.url, 'utf8')).trim(), user: creds.operator.user, pass: creds.operator.password });
    try {
      const jsm = await jetstreamManager(nc);
      for (const a of acknowledged) {
        const m = await jsm.direct.getMessage('PRESSLUFT_EVENTS', { seq: a.position });
        expect(m?.subject, `position ${a.position}`).toBe(`pressluft.node.${a.nodeId}`);
        const text = new TextDecoder().decode(m!.data);
        expect(text).toContain('ProvisionRequested');
        expect(text).toContain(a.jobId);
      }
    } finally {
      await nc.close();
    }

    // Exactly one server per node at the provider.
    const state = (await (await fetch(`${simEnv.origin}/__admin/state`)).json()) as { servers: Array<{ name: string }> };
    const perName = new Map<string, number>();
    for (const s of state.servers) perName.set(s.name, (perName.get(s.name) ?? 0) + 1);
    expect(acknowledged.map((a) => perName.get(a.name) ?? 0)).toEqual(acknowledged.map(() => 1));

    current.child.kill('SIGTERM');
    expect((await current.exited).code).toBe(0);
    monitoring = false;
    await monitor;
    expect(scans).toBeGreaterThan(20);
    expect(orphanedServers).toEqual([]);
    expect(maxServers).toBeLessThanOrEqual(1);
    expect(await serversUsingConfig(configFile)).toEqual([]);
  });

  it('stops within 15 s of SIGTERM while Ansible runs, and leaves no process behind', { timeout: 240_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-sigterm-'));
    dirs.push(dir);
    const port = await freeLoopbackPort();
    const base = `http://127.0.0.1:${port}`;
    const running = await serve(serveEnv(dir, port, fixture('provision-slow.yml')));
    const tree = watchDescendants(running.pid, 50);
    const { jobId } = await createNode(base, 'sigterm-node', sshd.port);
    // Wait until ansible-playbook runs, so the stop has a child of a child to take down.
    const until = Date.now() + 120_000;
    while (!tree.seen().some((p) => p.argv.some((a) => a.includes('ansible-playbook'))) && Date.now() < until) await sleep(100);
    expect(tree.seen().some((p) => p.argv.some((a) => a.includes('ansible-playbook'))), `job ${jobId}: ansible-playbook never started:\n${running.output().slice(-3000)}`).toBe(true);
    expect(tree.seen().some((p) => p.argv.includes('-c') && p.argv.some((a) => a.endsWith('nats-server')))).toBe(true);

    const t0 = Date.now();
    running.child.kill('SIGTERM');
    const exit = await running.exited;
    const tookMs = Date.now() - t0;
    tree.stop();
    expect(exit.code).toBe(0);
    expect(tookMs).toBeLessThanOrEqual(15_000);
    expect(await tree.survivors()).toEqual([]);
  });
});

describe('pressluft serve when its nats-server dies', () => {
  it('logs NATS_SERVER_EXITED and exits 70 for the service manager to restart it', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-natsdies-'));
    dirs.push(dir);
    const running = await serve({ ...serveEnv(dir, await freeLoopbackPort(), fixture('provision-local.yml')), PRESSLUFT_ROLE: 'api' });
    const natsPid = JSON.parse(await readFile(join(embeddedNatsFiles(dir).storeDir, 'nats-server.pid'), 'utf8')).serverPid as number;
    const t0 = Date.now();
    process.kill(natsPid, 'SIGKILL');
    const exit = await running.exited;
    expect(exit.code).toBe(70);
    expect(Date.now() - t0).toBeLessThanOrEqual(15_000);
    expect(running.output()).toMatch(/"errorCode":"NATS_SERVER_EXITED".*"signal":"SIGKILL"/);
  });
});
