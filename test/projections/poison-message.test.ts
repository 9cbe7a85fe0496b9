import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { encodeDecision } from '../../src/events/event-codec.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { cleanReplay } from '../support/clean-replay.ts';
import { useNatsServer } from '../support/nats.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

const nats = useNatsServer();
const { logger, lines } = captureLogger('warn');
let store: EventStore;
let repo: NodeRepository;
let raw: NatsConnection;
let dir: string;

const request = (nodeId: string) =>
  handleCommand(repo, nodeId, { type: 'RequestProvision', nodeId, jobId: `job-${nodeId}`, spec: spec({ name: nodeId }), policy: policy() }, ctx());
const start = (nodeId: string) => handleCommand(repo, nodeId, { type: 'StartAttempt', jobId: `job-${nodeId}` }, ctx({ now: '2026-11-26T12:01:00.000Z' }));

/** What a local user with publish rights could do: bytes on a node's subject, past every decider. */
const publishRaw = async (nodeId: string, body: string | Uint8Array): Promise<number> =>
  (await jetstream(raw).publish(`pl.node.${nodeId}`, body)).seq;

const replay = (name: string) => cleanReplay(store, { dir, name, logger });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-poison-'));
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
  raw = await connect({ servers: nats.server.url });
});
afterAll(async () => {
  await raw.drain();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a message that does not decode', () => {
  it('breaks only its own node: every other node keeps projecting, and a rebuild finds the same', async () => {
    const live = new Projector(store, { dbPath: join(dir, 'live.db'), logger, batchSize: 3 });
    live.start();
    const queries = new ReadModelQueries(live.db);
    for (const n of ['node-a', 'node-b', 'node-c']) await request(n);
    expect(await live.waitFor(await store.lastPosition(), 30_000)).toBe(true);
    const bBefore = queries.getNode('node-b');
    expect(bBefore?.projection).toEqual({ broken: false, position: null, reason: null, at: null, skipped: 0 });

    const [first] = await store.readStream('node-b');
    const poison = await publishRaw('node-b', 'not json {');
    // A well-formed decision after the bad one is still not folded: the node's state would be wrong.
    await publishRaw('node-b', encodeDecision(first!.events));
    await publishRaw('node-b', '{"events":[{"type":"Forged"}]}');
    // A node whose very first message is bad has no row, but is reported.
    await publishRaw('ghost', 'HCLOUD_TOKEN=abc');
    await start('node-a');
    await request('node-d');
    const end = await store.lastPosition();
    expect(await live.waitFor(end, 30_000)).toBe(true);

    expect(live.error).toBeNull();
    expect(queries.getNode('node-a')).toMatchObject({ status: 'acquiring', projection: { broken: false } });
    expect(queries.getNode('node-d')).toMatchObject({ status: 'pending', position: end, projection: { broken: false } });
    const b = queries.getNode('node-b');
    expect(b).toEqual({
      ...bBefore,
      projection: { broken: true, position: poison, reason: expect.stringContaining(`at position ${poison}: not JSON`), at: expect.any(String), skipped: 2 },
    });
    expect(new Date(b!.projection.at!).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(queries.getNode('ghost')).toBeNull();
    expect(queries.brokenNodes().map((n) => n.nodeId)).toEqual(['ghost', 'node-b']);
    expect(queries.brokenNodeCount()).toBe(2);
    expect(live.brokenNodeCount()).toBe(2);
    expect(lines.some((l) => l.includes('"nodeId":"node-b"') && l.includes('EVENT_INVALID'))).toBe(true);

    const before = queries.dump();
    const report = await live.rebuild();
    expect(report.replayed).toBe(end);
    expect(queries.dump()).toEqual(before);
    await live.stop();
    live.close();
    expect(await replay('clean')).toEqual(before);
  });

  it('survives a restart: the broken node stays broken and its later messages are counted', async () => {
    const dbPath = join(dir, 'restart.db');
    const first = new Projector(store, { dbPath, logger });
    first.start();
    expect(await first.waitFor(await store.lastPosition(), 30_000)).toBe(true);
    await first.stop();
    first.close();

    await publishRaw('node-b', 'still broken');
    await request('node-e');
    const second = new Projector(store, { dbPath, logger });
    second.start();
    expect(await second.waitFor(await store.lastPosition(), 30_000)).toBe(true);
    const queries = new ReadModelQueries(second.db);
    expect(queries.getNode('node-b')?.projection).toMatchObject({ broken: true, skipped: 3 });
    expect(queries.getNode('node-e')?.projection.broken).toBe(false);
    await second.stop();
    const dump = queries.dump();
    second.close();
    expect(await replay('clean-after-restart')).toEqual(dump);
  });
});
