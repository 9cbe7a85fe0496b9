import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { createNode, reprovisionNode } from '../../src/commands/provision-service.ts';
import { PlaybookDigestMismatch, SshUserUnsupported } from '../../src/commands/domain-errors.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { useNatsServer } from '../support/nats.ts';
import { policy } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

/** The command service over a real nats-server: a refused sshUser appends nothing. */
const nats = useNatsServer();
let store: EventStore;
let repo: NodeRepository;
const now = '2026-12-03T12:00:00.000Z';
const DIGEST = 'c0'.repeat(32);
const STALE = 'de'.repeat(32);
const body = (sshUser: string) => ({ name: 'web-1', serverType: 'cx22', location: 'fsn1', image: 'ubuntu-24.04', sshUser, sshPort: 2222 });

beforeAll(async () => {
  store = await EventStore.open(nats.server.url, { streamName: 'SVC', subjectPrefix: 'svc', duplicateWindowMs: 120_000, logger: captureLogger('warn').logger });
  repo = new NodeRepository(store);
});
afterAll(() => store.close());

describe('provision service: sshUser', () => {
  it('refuses a non-root sshUser with SSH_USER_UNSUPPORTED and appends nothing', async () => {
    const before = await store.lastPosition();
    const e = await createNode(repo, body('deploy'), { idempotencyKey: undefined, policy: policy(), now, playbookDigest: DIGEST }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SshUserUnsupported);
    expect(e).toMatchObject({ code: 'SSH_USER_UNSUPPORTED', retryable: false });
    expect(await store.lastPosition()).toBe(before);
  });

  it('refuses it with an Idempotency-Key too, and the key stays free for a root node', async () => {
    await expect(createNode(repo, body('deploy'), { idempotencyKey: 'k-ssh', policy: policy(), now, playbookDigest: DIGEST })).rejects.toBeInstanceOf(SshUserUnsupported);
    const created = await createNode(repo, body('root'), { idempotencyKey: 'k-ssh', policy: policy(), now, playbookDigest: DIGEST });
    expect((await repo.load(created.nodeId)).state.spec?.sshUser).toBe('root');
    expect(await reprovisionNode(repo, created.nodeId, { policy: policy(), now, playbookDigest: DIGEST }).catch((err: unknown) => err)).toMatchObject({ code: 'JOB_ACTIVE' });
  });
});

describe('provision service: expectPlaybook', () => {
  it('refuses a stale digest with PLAYBOOK_DIGEST_MISMATCH before anything is appended', async () => {
    const before = await store.lastPosition();
    const e = await createNode(repo, body('root'), { idempotencyKey: undefined, policy: policy(), now, expectPlaybook: STALE, playbookDigest: DIGEST }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(PlaybookDigestMismatch);
    expect(e).toMatchObject({ code: 'PLAYBOOK_DIGEST_MISMATCH', details: { expected: STALE, actual: DIGEST } });
    expect(await store.lastPosition()).toBe(before);
  });

  it('records a matching digest on the request, for the worker to check again', async () => {
    const created = await createNode(repo, { ...body('root'), name: 'web-2' }, { idempotencyKey: undefined, policy: policy(), now, expectPlaybook: DIGEST, playbookDigest: DIGEST });
    const [first] = await repo.history(created.nodeId);
    expect(first).toMatchObject({ type: 'ProvisionRequested', data: { expectPlaybook: DIGEST, name: 'web-2' } });
    expect((await repo.load(created.nodeId)).state.jobs[created.jobId]?.expectPlaybook).toBe(DIGEST);
  });

  it('refuses a re-provision with a stale digest and appends nothing', async () => {
    const created = await createNode(repo, { ...body('root'), name: 'web-3' }, { idempotencyKey: undefined, policy: policy(), now, playbookDigest: DIGEST });
    const version = await store.version(created.nodeId);
    await expect(reprovisionNode(repo, created.nodeId, { policy: policy(), now, expectPlaybook: STALE, playbookDigest: DIGEST })).rejects.toMatchObject({ code: 'PLAYBOOK_DIGEST_MISMATCH' });
    expect(await store.version(created.nodeId)).toBe(version);
  });
});
