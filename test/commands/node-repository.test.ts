import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeExists } from '../../src/commands/domain-errors.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { useNatsServer } from '../support/nats.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

/** The repository's state cache and the create path, over a real nats-server. */
const nats = useNatsServer();
let store: EventStore;

beforeAll(async () => {
  store = await EventStore.open(nats.server.url, { streamName: 'REPO', subjectPrefix: 'repo', duplicateWindowMs: 120_000, logger: captureLogger('warn').logger });
});
afterAll(() => store.close());

let n = 0;
const create = (repo: NodeRepository, nodeId = `n_repo${++n}`) =>
  handleCommand(repo, nodeId, { type: 'RequestProvision', nodeId, jobId: `j_${nodeId}`, spec: spec(), policy: policy() }, ctx()).then((r) => ({ nodeId, ...r }));

/** Counts the store's reads while a test runs; the store itself is real. */
const countReads = (s: EventStore) => {
  const counts = { version: 0, readStream: 0 };
  const version = s.version.bind(s);
  const readStream = s.readStream.bind(s);
  s.version = (id) => (counts.version++, version(id));
  s.readStream = (id, o) => (counts.readStream++, readStream(id, o));
  return { counts, restore: () => Object.assign(s, { version, readStream }) };
};

describe('node repository: a state cache bounded by bytes', () => {
  it('keeps at most its budget of state JSON, least recently used out first, and loads an evicted node from the log', async () => {
    const probe = await create(new NodeRepository(store));
    const stateBytes = JSON.stringify(probe.state).length;
    const repo = new NodeRepository(store, 3 * stateBytes + stateBytes / 2);
    const made = [];
    for (let i = 0; i < 6; i++) made.push(await create(repo));
    expect(repo.cacheSize).toEqual({ entries: 3, bytes: 3 * stateBytes });

    const reads = countReads(store);
    try {
      // The three newest are cached: a load is one version lookup and no read.
      for (const m of made.slice(3)) expect(await repo.load(m.nodeId)).toEqual({ state: m.state, version: m.position });
      expect(reads.counts).toEqual({ version: 3, readStream: 0 });
      // The oldest was evicted: its state comes back from the log, equal to what the append produced.
      expect(await repo.load(made[0]!.nodeId)).toEqual({ state: made[0]!.state, version: made[0]!.position });
      expect(reads.counts.readStream).toBe(1);
    } finally {
      reads.restore();
    }
    expect(repo.cacheSize.bytes).toBeLessThanOrEqual(3 * stateBytes + stateBytes / 2);
  });

  it('does not keep a state larger than the whole budget', async () => {
    const repo = new NodeRepository(store, 100);
    const m = await create(repo);
    expect(repo.cacheSize).toEqual({ entries: 0, bytes: 0 });
    expect((await repo.load(m.nodeId)).state).toEqual(m.state);
  });
});

describe('command handler: a create is tried on an empty stream', () => {
  it('appends a new node without a version lookup', async () => {
    const repo = new NodeRepository(store);
    const reads = countReads(store);
    try {
      const m = await create(repo);
      expect(m.events.map((e) => e.type)).toEqual(['ProvisionRequested']);
      expect(reads.counts).toEqual({ version: 0, readStream: 0 });
    } finally {
      reads.restore();
    }
  });

  it('still refuses an existing node with NODE_EXISTS, and appends nothing', async () => {
    const first = await create(new NodeRepository(store));
    const before = await store.lastPosition();
    // A fresh repository knows nothing about the node: only the failed guess tells it.
    const e = await create(new NodeRepository(store), first.nodeId).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NodeExists);
    expect(await store.lastPosition()).toBe(before);
  });
});

describe('node repository: reads from a replica behind the leader', () => {
  it('refuses to fold a short read as the whole node (EVENTSTORE_UNAVAILABLE, retryable)', async () => {
    const { nodeId } = await create(new NodeRepository(store));
    const behind = Object.create(store) as EventStore;
    // A follower that answers the version but not yet the message at it.
    behind.readStream = async () => [];
    await expect(new NodeRepository(behind).load(nodeId)).rejects.toMatchObject({ code: 'EVENTSTORE_UNAVAILABLE', retryable: true });
  });
});
