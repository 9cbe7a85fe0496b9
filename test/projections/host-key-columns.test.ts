import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { cleanReplay } from '../support/clean-replay.ts';
import { HOST_KEY_A, HOST_KEY_B } from '../support/host-keys.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';

const nats = useNatsServer();
const { logger } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let dir: string;

const created = HOST_KEY_A;
const presented = HOST_KEY_B;
const digest = 'ab'.repeat(32);
const recap = { ok: 0, changed: 0, failures: 0, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 };
const run = (cmd: Parameters<typeof handleCommand>[2]) => handleCommand(repo, 'node-hk', cmd, ctx());

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-proj-hk-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('host key and playbook columns', () => {
  it('projects the trusted and presented keys on the node, and the run and its mismatch on the job, as a clean replay does', async () => {
    const projector = new Projector(store, { dbPath: join(dir, 'live.db'), logger, batchSize: 3 });
    projector.start();
    const q = new ReadModelQueries(projector.db);
    const settle = async () => expect(await projector.waitFor(await store.lastPosition(), 20_000)).toBe(true);
    const jobId = 'job-hk';
    await run({ type: 'RequestProvision', nodeId: 'node-hk', jobId, spec: spec({ name: 'hk' }), policy: policy() });
    await run({ type: 'StartAttempt', jobId });
    await run({ type: 'RecordSshKey', jobId, attempt: 1, keyId: '1', fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' });
    await settle();
    // An old-style job: nothing known yet.
    expect(q.getNode('node-hk')).toMatchObject({ hostKeyFingerprint: null, hostKeySource: null, presentedHostKeyFingerprint: null });
    expect(q.getJob(jobId)).toMatchObject({ playbookDigest: null, productVersion: null, hostKeyFingerprint: null, hostKeyMismatchExpected: null });

    await run({ type: 'RecordServerCreateIntent', jobId, attempt: 1, serverName: 'pl-hk', labels: {}, hostKey: created });
    await run({ type: 'RecordServerCreated', jobId, attempt: 1, serverId: '1', actionIds: [], adopted: false });
    await run({ type: 'RecordServerReady', jobId, attempt: 1, serverId: '1', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
    await run({ type: 'RecordAnsibleStarted', jobId, attempt: 1, playbook: 'p.yml', playbookDigest: digest, productVersion: '1.2.3', hostKeyFingerprint: created.fingerprint });
    await settle();
    expect(q.getNode('node-hk')).toMatchObject({ hostKeyFingerprint: created.fingerprint, hostKeySource: 'created', presentedHostKeyFingerprint: null });
    expect(q.getJob(jobId)).toMatchObject({ playbookDigest: digest, productVersion: '1.2.3', hostKeyFingerprint: created.fingerprint, hostKeyMismatchExpected: null });

    const hostKeyMismatch = { expectedFingerprint: created.fingerprint, presentedFingerprint: presented.fingerprint, presentedPublicKey: presented.publicKey };
    await run({
      type: 'RecordAnsibleResult', jobId, attempt: 1,
      result: { ok: false, errorCode: 'ANSIBLE_HOST_KEY_MISMATCH', retryable: false, exitCode: 4, recap, durationMs: 10, outputTail: 'tail', finishedAt: '2026-11-26T12:06:00.000Z', hostKeyMismatch },
    });
    await settle();
    expect(q.getNode('node-hk')).toMatchObject({ hostKeySource: 'created', presentedHostKeyFingerprint: presented.fingerprint });
    const failedJob = q.getJob(jobId);
    expect(failedJob).toMatchObject({ status: 'failed', hostKeyMismatchExpected: created.fingerprint, hostKeyMismatchPresented: presented.fingerprint });

    await run({ type: 'TrustHostKey', nodeId: 'node-hk', fingerprint: presented.fingerprint });
    await settle();
    expect(q.getNode('node-hk')).toMatchObject({ hostKeyFingerprint: presented.fingerprint, hostKeySource: 'trusted', presentedHostKeyFingerprint: null });
    // Trusting names the failed job but changes nothing in it: its row is not rewritten.
    expect(q.getJob(jobId)).toEqual(failedJob);

    const live = q.dump();
    await projector.stop();
    projector.close();
    expect(await cleanReplay(store, { dir, name: 'clean', logger })).toEqual(live);
  });
});
