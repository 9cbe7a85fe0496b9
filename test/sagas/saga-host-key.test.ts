import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { createHetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import type { HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { ProvisionSaga } from '../../src/sagas/provision-saga.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { useNatsServer } from '../support/nats.ts';
import { noopRunner } from '../support/noop-runner.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';
import { fakeSshd, requestProvision, startSimulator, waitTerminal } from '../support/saga-harness.ts';
import { requestsSeen } from '../providers/provision-driver.ts';
import { sagaTestDeps } from './saga-deps.ts';

/**
 * The create side of issue 10 and the saga side of issues 12 and 13, through the real saga:
 * JetStream, the simulator over HTTP, and a no-op runner (ssh connection, so the run records the host key).
 */
const nats = useNatsServer();
const { logger, lines } = captureLogger('debug');
const keyPair = generateOpenSshEd25519('pressluft-test');
const POLL = { initialMs: 50, flatCount: 5, factor: 1.5, capMs: 200 };
const failurePolicy = { maxAttempts: 3, backoffMs: [300, 600, 900] };
let store: EventStore;
let repo: NodeRepository;
let sim: HetznerSimulator;
let sshd: Awaited<ReturnType<typeof fakeSshd>>;
let deps: Awaited<ReturnType<typeof sagaTestDeps>>;
let saga: ProvisionSaga;

const startSaga = async (d: typeof deps, consumer: string): Promise<ProvisionSaga> => {
  const s = new ProvisionSaga({
    store,
    provider: createHetznerProvider({ endpoint: sim.url, token: sim.token, timeoutMs: 2000, logger }),
    runner: noopRunner,
    keyPair,
    hostKeys: d.hostKeys,
    playbookBundle: d.playbookBundle,
    logger,
    playbook: 'test/fixtures/saga/provision-ok.yml',
    targetConnection: 'ssh',
    consumerName: consumer,
    ackWaitMs: 3000,
    poll: POLL,
    watchIntervalMs: 100,
  });
  await s.start();
  return s;
};

type HostKeyData = { publicKey: string; fingerprint: string };
const historyOf = (nodeId: string) => repo.history(nodeId);
const dataOf = async <T>(nodeId: string, type: string): Promise<T[]> => (await historyOf(nodeId)).filter((e) => e.type === type).map((e) => e.data as T);
const serverOf = (nodeId: string) => sim.admin.snapshot().servers.filter((s) => s.labels['pressluft/node-id'] === nodeId);
const parseYaml = async (doc: string) =>
  JSON.parse((await execa('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: doc })).stdout) as {
    ssh_keys: { ed25519_private: string; ed25519_public: string };
  };

beforeAll(async () => {
  deps = await sagaTestDeps();
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 600_000, logger });
  repo = new NodeRepository(store);
  sim = await startSimulator(0);
  sshd = await fakeSshd();
  saga = await startSaga(deps, 'saga-hostkey');
});
afterAll(async () => {
  await saga.stop();
  await sshd.close();
  await sim.close();
  await store.close();
  await deps.cleanup();
});

describe('host key injected at create', () => {
  it('records the key before the POST, sends it as user_data, and the run trusts exactly it', async () => {
    await requestProvision(repo, 'hk-ok', { sshPort: sshd.port });
    const s = await waitTerminal(store, 'hk-ok', 30_000);
    expect(s.jobs['hk-ok-job']?.status).toBe('succeeded');
    const [intent] = await dataOf<{ hostKey?: HostKeyData }>('hk-ok', 'ServerCreateRequested');
    expect(intent?.hostKey?.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const [started] = await dataOf<{ hostKeyFingerprint?: string | null; playbookDigest?: string; productVersion?: string }>('hk-ok', 'AnsibleStarted');
    expect(started).toMatchObject({ hostKeyFingerprint: intent!.hostKey!.fingerprint, playbookDigest: deps.playbookBundle.digest, productVersion: deps.playbookBundle.version });
    expect(s.hostKey).toEqual({ ...intent!.hostKey, source: 'created' });
    const cloudConfig = await parseYaml(serverOf('hk-ok')[0]!.userData!);
    expect(cloudConfig.ssh_keys.ed25519_public).toBe(intent!.hostKey!.publicKey);
    // The private half in user_data is the one the intent's public key belongs to.
    const derived = (await execa('sh', ['-c', 'cat | ssh-keygen -y -f /dev/stdin'], { input: cloudConfig.ssh_keys.ed25519_private })).stdout;
    expect(derived.split(' ').slice(0, 2).join(' ')).toBe(intent!.hostKey!.publicKey);
  });

  it('adopts the server after a dropped create response with the expected fingerprint of the lost create', async () => {
    sim.admin.injectFault({ operation: 'create_server', count: 1, applyFirst: true, effect: { type: 'drop' } });
    await requestProvision(repo, 'hk-drop', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'hk-drop', 30_000);
    expect(s.jobs['hk-drop-job']).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(s.jobs['hk-drop-job']?.progress.server?.adopted).toBe(true);
    const intents = await dataOf<{ attempt: number; hostKey?: HostKeyData }>('hk-drop', 'ServerCreateRequested');
    expect(intents.map((i) => i.attempt)).toEqual([1, 2]);
    expect(intents[1]?.hostKey).toEqual(intents[0]?.hostKey);
    const [started] = await dataOf<{ hostKeyFingerprint?: string | null }>('hk-drop', 'AnsibleStarted');
    expect(started?.hostKeyFingerprint).toBe(intents[0]!.hostKey!.fingerprint);
    const servers = serverOf('hk-drop');
    expect(servers).toHaveLength(1);
    expect((await parseYaml(servers[0]!.userData!)).ssh_keys.ed25519_public).toBe(intents[0]!.hostKey!.publicKey);
  });

  it('keeps the node\'s key on a re-provision that adopts its server', async () => {
    const before = (await repo.load('hk-ok')).state.hostKey;
    await handleCommand(repo, 'hk-ok', { type: 'RequestReprovision', nodeId: 'hk-ok', jobId: 'hk-ok-job2', policy: policy() }, ctx({ now: new Date().toISOString() }));
    await expect.poll(async () => (await repo.load('hk-ok')).state.jobs['hk-ok-job2']?.status, { timeout: 30_000, interval: 100 }).toBe('succeeded');
    const { state } = await repo.load('hk-ok');
    expect(state.jobs['hk-ok-job2']?.progress.server?.adopted).toBe(true);
    expect(state.hostKey?.fingerprint).toBe(before?.fingerprint);
    expect(state.jobs['hk-ok-job2']?.hostKeyFingerprint).toBe(before?.fingerprint);
  });

  it('keeps the private host key out of every raw message of the stream, every log line, and plaintext on disk', async () => {
    const privateKeys = await Promise.all(['hk-ok', 'hk-drop'].map((n) => deps.hostKeys.forJob(n, `${n}-job`)));
    const secretLines = privateKeys.flatMap((k) => k.privateKey.split('\n').filter((l) => l && !l.startsWith('-----')));
    expect(secretLines.length).toBeGreaterThan(4);
    const last = await store.lastPosition();
    const raw: string[] = [];
    for (let seq = 1; seq <= last; seq++) {
      const m = await store.getMessage(seq);
      if (m) raw.push(Buffer.from(m.data).toString('utf8'), JSON.stringify(m.headers));
    }
    expect(raw.length).toBeGreaterThan(20);
    const everything = [...raw, ...lines].join('\n');
    expect(everything).toContain(privateKeys[0]!.fingerprint);
    for (const l of secretLines) expect(everything).not.toContain(l);
    expect(everything).not.toContain('OPENSSH PRIVATE KEY');
    expect(everything).not.toContain('cloud-config');
    const files = await readdir(join(deps.dataDir, 'host-keys'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const path = join(deps.dataDir, 'host-keys', f);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const text = await readFile(path, 'utf8');
      for (const l of secretLines) expect(text).not.toContain(l);
    }
  });

  it('refuses to create with a key the worker cannot reproduce (another PRESSLUFT_SECRET_KEY), without a POST', async () => {
    // Attempt 1 on this worker records the intent and fails its POST; attempt 2 runs on a worker with another secret.
    // The backoff is the window to stop this worker before it takes attempt 2 itself: seconds of slack on a loaded machine.
    sim.admin.injectFault({ operation: 'create_server', count: 1, effect: { type: 'error', status: 503, code: 'unavailable' } });
    await requestProvision(repo, 'hk-other', { sshPort: sshd.port, policy: { maxAttempts: 3, backoffMs: [8000, 8000, 8000] } });
    await expect.poll(async () => (await dataOf('hk-other', 'RetryScheduled')).length, { timeout: 20_000, interval: 50 }).toBe(1);
    await saga.stop();
    const other = await sagaTestDeps('d'.repeat(64));
    const postsBefore = sim.admin.snapshot().counters.calls.create_server ?? 0;
    const otherSaga = await startSaga(other, 'saga-hostkey');
    try {
      const s = await waitTerminal(store, 'hk-other', 60_000);
      expect(s.jobs['hk-other-job']).toMatchObject({ status: 'failed', attempt: 2, errorCode: 'HOST_KEY_NOT_REPRODUCIBLE' });
      expect(sim.admin.snapshot().counters.calls.create_server ?? 0).toBe(postsBefore);
      expect(serverOf('hk-other')).toHaveLength(0);
    } finally {
      await otherSaga.stop();
      await other.cleanup();
      saga = await startSaga(deps, 'saga-hostkey');
    }
  });
});

describe('playbook digest (issue 12, saga side)', () => {
  const provisionExpecting = (nodeId: string, expectPlaybook: string) =>
    handleCommand(
      repo,
      nodeId,
      { type: 'RequestProvision', nodeId, jobId: `${nodeId}-job`, spec: spec({ name: nodeId, sshPort: sshd.port }), policy: policy(), expectPlaybook },
      ctx({ now: new Date().toISOString(), messageId: `provision:${nodeId}-job` }),
    );

  it('runs when the job expects the worker\'s bundle', async () => {
    await provisionExpecting('pb-same', deps.playbookBundle.digest);
    const s = await waitTerminal(store, 'pb-same', 30_000);
    expect(s.jobs['pb-same-job']).toMatchObject({ status: 'succeeded', playbookDigest: deps.playbookBundle.digest });
  });

  it('fails non-retryably with PLAYBOOK_DIGEST_MISMATCH before Ansible starts when the bundles differ', async () => {
    await provisionExpecting('pb-other', 'f'.repeat(64));
    const s = await waitTerminal(store, 'pb-other', 30_000);
    expect(s.jobs['pb-other-job']).toMatchObject({ status: 'failed', attempt: 1, errorCode: 'PLAYBOOK_DIGEST_MISMATCH' });
    expect(s.jobs['pb-other-job']?.errorMessage).toContain(deps.playbookBundle.digest);
    const types = (await historyOf('pb-other')).map((e) => e.type);
    expect(types).not.toContain('AnsibleStarted');
    expect(types).not.toContain('RetryScheduled');
  });
});

describe('provider requests per provision (issue 13): the first create skips its look-ups', () => {
  it('provisions 20 nodes with no server look-up, and a dropped create still looks up', async () => {
    // Counted from here: the SSH key id is already cached by this worker, as in a long-running process.
    const before = sim.admin.snapshot().counters;
    const seenBefore = requestsSeen(sim);
    const nodes = Array.from({ length: 20 }, (_, i) => `rq-${i}`);
    for (const n of nodes) await requestProvision(repo, n, { sshPort: sshd.port });
    await Promise.all(nodes.map((n) => waitTerminal(store, n, 60_000)));
    const c = sim.admin.snapshot().counters;
    const delta = (op: string) => (c.calls[op] ?? 0) - (before.calls[op] ?? 0);
    const total = requestsSeen(sim) - seenBefore;
    const calls = Object.fromEntries(Object.keys(c.calls).map((op) => [op, delta(op)]).filter(([, n]) => n !== 0));
    console.log(`saga: ${nodes.length} provisions, ${total} provider requests (${(total / nodes.length).toFixed(2)} per provision), calls ${JSON.stringify(calls)}`);
    expect(c.serversCreated - before.serversCreated).toBe(nodes.length);
    expect(delta('create_server')).toBe(nodes.length);
    expect(delta('list_servers')).toBe(0);
    expect(total / nodes.length).toBeLessThan(3);

    sim.admin.injectFault({ operation: 'create_server', count: 1, applyFirst: true, effect: { type: 'drop' } });
    await requestProvision(repo, 'rq-drop', { sshPort: sshd.port, policy: failurePolicy });
    expect((await waitTerminal(store, 'rq-drop', 30_000)).jobs['rq-drop-job']?.status).toBe('succeeded');
    expect((sim.admin.snapshot().counters.calls.list_servers ?? 0) - (c.calls.list_servers ?? 0)).toBeGreaterThanOrEqual(1);
    expect(serverOf('rq-drop')).toHaveLength(1);
  });
});
