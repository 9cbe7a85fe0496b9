import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { createHetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import type { ProviderPort } from '../../src/providers/provider-port.ts';
import type { HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { ProvisionSaga } from '../../src/sagas/provision-saga.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { useNatsServer } from '../support/nats.ts';
import { sagaTestDeps } from './saga-deps.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx } from '../support/node-fixtures.ts';
import { eventTypes, fakeSshd, requestProvision, startSimulator, waitTerminal } from '../support/saga-harness.ts';

const nats = useNatsServer();
const { logger, lines } = captureLogger('debug');
const keyPair = generateOpenSshEd25519('pressluft-test');
const POLL = { initialMs: 50, flatCount: 5, factor: 1.5, capMs: 200 };
let store: EventStore;
let repo: NodeRepository;
let sim: HetznerSimulator;
let sshd: Awaited<ReturnType<typeof fakeSshd>>;
const sagas: ProvisionSaga[] = [];

const startSaga = async (o: { playbook?: string; consumer: string; provider?: ProviderPort; maxDeliver?: number }) => {
  const saga = new ProvisionSaga({
    store,
    provider: o.provider ?? createHetznerProvider({ endpoint: sim.url, token: sim.token, timeoutMs: 2000, logger }),
    runner: new AnsiblePlaybookRunner({ logger, killGraceMs: 1000 }),
    keyPair,
    hostKeys: deps.hostKeys,
    playbookBundle: deps.playbookBundle,
    logger,
    playbook: o.playbook ?? 'test/fixtures/saga/provision-ok.yml',
    targetConnection: 'local',
    consumerName: o.consumer,
    ackWaitMs: 3000,
    maxDeliver: o.maxDeliver ?? 200,
    poll: POLL,
    watchIntervalMs: 100,
  });
  await saga.start();
  sagas.push(saga);
  return saga;
};

const serversOf = (nodeId: string) => sim.admin.snapshot().servers.filter((s) => Object.values(s.labels).includes(nodeId));
const failurePolicy = { maxAttempts: 3, backoffMs: [300, 600, 900] };

let deps: Awaited<ReturnType<typeof sagaTestDeps>>;
beforeAll(async () => {
  deps = await sagaTestDeps();
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 600_000, logger });
  repo = new NodeRepository(store);
  sim = await startSimulator(0);
  sshd = await fakeSshd();
  await startSaga({ consumer: 'saga-main' });
});
afterAll(async () => {
  for (const s of sagas) await s.stop();
  await sshd.close();
  await sim.close();
  await store.close();
  await deps.cleanup();
});

describe('node_provision saga, end to end over JetStream, the simulator and ansible-playbook', () => {
  it('provisions a node: the job succeeds, the node is ready, the history is in order', async () => {
    const progress: string[] = [];
    const unsubscribe = store.subscribeProgress('e2e-ok-job', (p) => void progress.push(JSON.stringify(p)));
    await requestProvision(repo, 'e2e-ok', { sshPort: sshd.port });
    const s = await waitTerminal(store, 'e2e-ok', 60_000);
    unsubscribe();
    expect(s.jobs['e2e-ok-job']).toMatchObject({ status: 'succeeded', attempt: 1, errorCode: null });
    expect(s).toMatchObject({ status: 'ready', ipv4: '127.0.0.1', currentJobId: null, lastJobId: 'e2e-ok-job' });
    const types = await eventTypes(repo, 'e2e-ok');
    expect(types.filter((t) => t !== 'ActionPolled')).toEqual([
      'ProvisionRequested', 'JobStarted', 'SshKeyRegistered', 'ServerCreateRequested', 'ServerCreated',
      'ServerReady', 'AnsibleStarted', 'AnsibleSucceeded', 'ProvisionSucceeded',
    ]);
    expect(types.indexOf('ServerReady')).toBeLessThan(types.indexOf('AnsibleStarted'));
    expect(serversOf('e2e-ok')).toHaveLength(1);
    const tasks = progress.map((p) => JSON.parse(p) as { index: number; total: number; task: string });
    expect(tasks.map((t) => `${t.index}/${t.total}`)).toEqual(['1/2', '2/2']);
    // The private key never reaches the log or the events.
    const history = JSON.stringify(await repo.history('e2e-ok'));
    expect(history).not.toContain('PRIVATE KEY');
    expect(lines.join('\n')).not.toContain(keyPair.privateKey.split('\n')[1]!);
  });

  it('re-provisions an already provisioned node idempotently: same server, node ready again', async () => {
    const before = serversOf('e2e-ok');
    await handleCommand(repo, 'e2e-ok', { type: 'RequestReprovision', nodeId: 'e2e-ok', jobId: 'e2e-ok-job2', policy: (await repo.load('e2e-ok')).state.jobs['e2e-ok-job']!.policy }, ctx({ now: new Date().toISOString() }));
    await expect.poll(async () => (await repo.load('e2e-ok')).state.jobs['e2e-ok-job2']?.status, { timeout: 60_000, interval: 100 }).toBe('succeeded');
    const { state } = await repo.load('e2e-ok');
    expect(state.status).toBe('ready');
    expect(serversOf('e2e-ok')).toEqual(before);
    expect(state.jobs['e2e-ok-job2']?.progress.server?.adopted).toBe(true);
  });

  it('recovers from resource_unavailable on create, on the configured backoff, with one server', async () => {
    sim.admin.injectFault({ operation: 'create_server', count: 1, effect: { type: 'error', status: 412, code: 'resource_unavailable' } });
    await requestProvision(repo, 'e2e-412', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-412', 60_000);
    expect(s.jobs['e2e-412-job']).toMatchObject({ status: 'succeeded', attempt: 2 });
    const history = await repo.history('e2e-412');
    const retry = history.find((e) => e.type === 'RetryScheduled');
    expect(retry?.data).toMatchObject({ attempt: 1, errorCode: 'PROVIDER_RESOURCE_UNAVAILABLE' });
    // runAfter = the failure's time + the first backoff, exactly.
    expect(Date.parse((retry!.data as { runAfter: string }).runAfter) - Date.parse(retry!.occurredAt)).toBe(300);
    const restarted = history.filter((e) => e.type === 'JobStarted').at(-1)!;
    expect(Date.parse(restarted.occurredAt)).toBeGreaterThanOrEqual(Date.parse((retry!.data as { runAfter: string }).runAfter));
    expect(serversOf('e2e-412')).toHaveLength(1);
  });

  it('adopts the server after a dropped create response: one server, no second create', async () => {
    const createdBefore = sim.admin.snapshot().counters.serversCreated;
    sim.admin.injectFault({ operation: 'create_server', count: 1, applyFirst: true, effect: { type: 'drop' } });
    await requestProvision(repo, 'e2e-drop', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-drop', 60_000);
    expect(s.jobs['e2e-drop-job']?.status).toBe('succeeded');
    expect(serversOf('e2e-drop')).toHaveLength(1);
    expect(sim.admin.snapshot().counters.serversCreated - createdBefore).toBe(1);
    expect(s.jobs['e2e-drop-job']?.progress.server?.adopted).toBe(true);
  });

  it('waits out a 429 and a 423 without spending an attempt', async () => {
    sim.admin.injectFault({ operation: 'list_ssh_keys', count: 1, effect: { type: 'error', status: 429, code: 'rate_limit_exceeded' } });
    sim.admin.injectFault({ operation: 'get_server', count: 2, effect: { type: 'error', status: 423, code: 'locked' } });
    await requestProvision(repo, 'e2e-429', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-429', 60_000);
    expect(s.jobs['e2e-429-job']).toMatchObject({ status: 'succeeded', attempt: 1 });
    expect(await eventTypes(repo, 'e2e-429')).not.toContain('RetryScheduled');
  });

  it('fails a terminal provider error on the first attempt with its code', async () => {
    sim.admin.injectFault({ operation: 'create_server', count: 1, effect: { type: 'error', status: 403, code: 'resource_limit_exceeded' } });
    await requestProvision(repo, 'e2e-quota', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-quota', 60_000);
    expect(s.jobs['e2e-quota-job']).toMatchObject({ status: 'failed', attempt: 1, errorCode: 'PROVIDER_QUOTA_EXCEEDED' });
    expect(s.status).toBe('failed');
    expect(serversOf('e2e-quota')).toHaveLength(0);
  });

  it('fails a retryable error after exactly maxAttempts, with runAfter on the schedule', async () => {
    sim.admin.injectFault({ operation: 'create_server', count: 3, effect: { type: 'error', status: 503, code: 'unavailable' } });
    await requestProvision(repo, 'e2e-503', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-503', 60_000);
    expect(s.jobs['e2e-503-job']).toMatchObject({ status: 'failed', attempt: 3, errorCode: 'PROVIDER_UNAVAILABLE' });
    const retries = (await repo.history('e2e-503')).filter((e) => e.type === 'RetryScheduled');
    expect(retries.map((r) => Date.parse((r.data as { runAfter: string }).runAfter) - Date.parse(r.occurredAt))).toEqual([300, 600]);
  });

  it('fails with PROVIDER_ACTION_FAILED when the create action errors', async () => {
    sim.admin.failNextActions(1, 'unknown_error', 'server is locked');
    await requestProvision(repo, 'e2e-acterr', { sshPort: sshd.port, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-acterr', 60_000);
    expect(s.jobs['e2e-acterr-job']).toMatchObject({ status: 'failed', errorCode: 'PROVIDER_ACTION_FAILED' });
    expect(s.jobs['e2e-acterr-job']?.errorMessage).toContain('unknown_error');
  });

  it('fails with PROVIDER_ACTION_TIMEOUT when actions never finish', async () => {
    sim.admin.setActionDuration(null);
    try {
      await requestProvision(repo, 'e2e-actto', { sshPort: sshd.port, policy: { ...failurePolicy, actionTimeoutMs: 800 } });
      const s = await waitTerminal(store, 'e2e-actto', 30_000);
      expect(s.jobs['e2e-actto-job']).toMatchObject({ status: 'failed', attempt: 1, errorCode: 'PROVIDER_ACTION_TIMEOUT' });
    } finally {
      sim.admin.setActionDuration(0);
    }
  });

  it('refuses to run Ansible against this machine’s own sshd (loopback port 22)', async () => {
    await requestProvision(repo, 'e2e-22', { sshPort: 22, policy: failurePolicy });
    const s = await waitTerminal(store, 'e2e-22', 30_000);
    expect(s.jobs['e2e-22-job']).toMatchObject({ status: 'failed', errorCode: 'TARGET_FORBIDDEN' });
    expect(await eventTypes(repo, 'e2e-22')).not.toContain('AnsibleStarted');
  });
});

const ansibleProcesses = (needle: string): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);

describe('saga: Ansible timeouts, cancellation and poisoned steps', () => {
  it('cancels during a long Ansible run within seconds and leaves no process behind', async () => {
    await startSaga({ consumer: 'saga-sleep', playbook: 'test/fixtures/saga/provision-sleep.yml' });
    // Only the sleep saga may act on this node: give the main saga nothing to do by stopping it first.
    await sagas[0]!.stop();
    await requestProvision(repo, 'e2e-cancel', { sshPort: sshd.port });
    await expect.poll(() => ansibleProcesses('sleep 300').length, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);
    const asked = Date.now();
    await handleCommand(repo, 'e2e-cancel', { type: 'RequestCancel', jobId: 'e2e-cancel-job', reason: 'test' }, ctx({ now: new Date().toISOString() }));
    const s = await waitTerminal(store, 'e2e-cancel', 10_000);
    expect(s.jobs['e2e-cancel-job']?.status).toBe('cancelled');
    await expect.poll(() => ansibleProcesses('sleep 300').length + ansibleProcesses('provision-sleep.yml').length, { timeout: 5_000, interval: 100 }).toBe(0);
    expect(Date.now() - asked).toBeLessThan(6_000);
  });

  it('fails ANSIBLE_TIMEOUT when the run outlives the Ansible timeout', async () => {
    await requestProvision(repo, 'e2e-ato', { sshPort: sshd.port, policy: { maxAttempts: 1, ansibleTimeoutMs: 1500 } });
    const s = await waitTerminal(store, 'e2e-ato', 30_000);
    expect(s.jobs['e2e-ato-job']).toMatchObject({ status: 'failed', errorCode: 'ANSIBLE_TIMEOUT' });
    const failed = (await repo.history('e2e-ato')).find((e) => e.type === 'AnsibleFailed');
    expect(failed?.data).toMatchObject({ errorCode: 'ANSIBLE_TIMEOUT', retryable: true });
    await expect.poll(() => ansibleProcesses('provision-sleep.yml').length, { timeout: 5_000 }).toBe(0);
  });

  it('turns a step that exhausts its deliveries into a visible ProvisionFailed', async () => {
    for (const s of sagas.splice(0)) await s.stop();
    const real = createHetznerProvider({ endpoint: sim.url, token: sim.token, timeoutMs: 2000, logger });
    const poisoned: ProviderPort = { ...real, name: 'poisoned', serverLabels: real.serverLabels?.bind(real), ensureSshKey: () => Promise.reject(new TypeError('poisoned step')) };
    await startSaga({ consumer: 'saga-poison', provider: poisoned, maxDeliver: 3 });
    await requestProvision(repo, 'e2e-poison', { sshPort: sshd.port });
    const s = await waitTerminal(store, 'e2e-poison', 30_000);
    expect(s.jobs['e2e-poison-job']).toMatchObject({ status: 'failed', errorCode: 'STEP_DELIVERY_EXHAUSTED' });
    expect(s.status).toBe('failed');
  });
});
