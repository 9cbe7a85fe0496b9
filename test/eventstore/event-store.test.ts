import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EventStore, WrongExpectedVersion, versionBelow } from '../../src/eventstore/event-store.ts';
import { toEnvelopes } from '../../src/commands/command-handler.ts';
import { event } from '../../src/events/node-events.ts';
import { EventDecodeError } from '../../src/events/event-codec.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';

const nats = useNatsServer();
const { logger, lines } = captureLogger();
let store: EventStore;

const requested = (nodeId: string, jobId = `${nodeId}-j1`) =>
  toEnvelopes(nodeId, [event('ProvisionRequested', { nodeId, jobId, ...spec(), maxAttempts: 3, policy: policy(), reprovision: false })], ctx());
const started = (nodeId: string, attempt = 1) => toEnvelopes(nodeId, [event('JobStarted', { jobId: `${nodeId}-j1`, attempt })], ctx());

beforeAll(async () => {
  store = await EventStore.open(nats.server.url, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
});
afterAll(async () => {
  await store.close();
});

describe('event store over a real nats-server', () => {
  it('asserts the effective stream config and warns about servers below 2.10', async () => {
    const info = await store.jsm.streams.info('EVT');
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true, allow_direct: true, storage: 'file', duplicate_window: 120_000_000_000 });
    expect(versionBelow('2.9.10', '2.10.0')).toBe(true);
    expect(versionBelow('2.10.0', '2.10.0')).toBe(false);
    expect(versionBelow('2.11.3', '2.10.0')).toBe(false);
    if (versionBelow(store.nc.info?.version ?? '', '2.10.0')) expect(lines.some((l) => l.includes('clustered (R3) deployments need nats-server >= 2.10'))).toBe(true);
  });

  it('refuses an append at a stale expected version with WrongExpectedVersion', async () => {
    const first = await store.append('n-stale', requested('n-stale'), { expectedVersion: 0, messageId: 'n-stale-1' });
    await store.append('n-stale', started('n-stale'), { expectedVersion: first.position, messageId: 'n-stale-2' });
    const stale = store.append('n-stale', started('n-stale', 2), { expectedVersion: first.position, messageId: 'n-stale-3' });
    await expect(stale).rejects.toBeInstanceOf(WrongExpectedVersion);
    await expect(stale).rejects.toMatchObject({ code: 'WRONG_EXPECTED_VERSION', retryable: true });
    expect(await store.readStream('n-stale')).toHaveLength(2);
  });

  it('lets exactly one of 8 concurrent appenders at the same version win', async () => {
    for (let round = 0; round < 10; round++) {
      const id = `n-race-${round}`;
      const base = await store.append(id, requested(id), { expectedVersion: 0, messageId: `${id}-base` });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.append(id, started(id, i + 1), { expectedVersion: base.position, messageId: `${id}-w${i}` })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof WrongExpectedVersion)).toHaveLength(7);
      expect(await store.readStream(id)).toHaveLength(2);
    }
  });

  it('returns the original position for a duplicate messageId and stores nothing new', async () => {
    const a = await store.append('n-dup', requested('n-dup'), { expectedVersion: 0, messageId: 'dup-1' });
    // Even with a now-stale expectation the dedupe answers first: a redo after a crash is harmless.
    const b = await store.append('n-dup', requested('n-dup'), { expectedVersion: 0, messageId: 'dup-1' });
    expect(b).toEqual({ position: a.position, duplicate: true });
    expect(await store.readStream('n-dup')).toHaveLength(1);
  });

  it('reads one stream in order, validated, and incrementally after a position', async () => {
    const id = 'n-order';
    let v = 0;
    v = (await store.append(id, requested(id), { expectedVersion: v, messageId: `${id}-0` })).position;
    await store.append('n-other', requested('n-other'), { expectedVersion: 0, messageId: 'n-other-0' });
    for (let i = 1; i <= 5; i++) v = (await store.append(id, started(id, i), { expectedVersion: v, messageId: `${id}-${i}` })).position;
    const all = await store.readStream(id);
    expect(all.map((d) => d.events[0]?.type)).toEqual(['ProvisionRequested', ...Array(5).fill('JobStarted')]);
    expect(all.map((d) => d.position)).toEqual([...all.map((d) => d.position)].sort((x, y) => x - y));
    expect(all.every((d) => d.subject === 'pl.node.n-order')).toBe(true);
    const tail = await store.readStream(id, { after: all[3]!.position });
    expect(tail.map((d) => d.position)).toEqual(all.slice(4).map((d) => d.position));
    expect(await store.version(id)).toBe(v);
  });

  it('fails loudly, naming stream and position, on an invalid event in the log', async () => {
    const nc = await connect({ servers: nats.server.url });
    const ack = await jetstream(nc).publish('pl.node.n-bad', JSON.stringify({ events: [{ type: 'Bogus', version: 1 }] }));
    await nc.close();
    const read = store.readStream('n-bad');
    await expect(read).rejects.toBeInstanceOf(EventDecodeError);
    await expect(read).rejects.toThrow(`invalid event in pl.node.n-bad at position ${ack.seq}`);
  });

  it('rejects ids that are not subject-token-safe', () => {
    expect(() => store.subjectFor('a.b')).toThrow(/token-safe/);
    expect(() => store.subjectFor('a*')).toThrow(/token-safe/);
  });

  it('keeps every event across a kill -9 and restart of nats-server', async () => {
    const id = 'n-crash';
    let v = 0;
    for (let i = 0; i < 20; i++) {
      const evs = i === 0 ? requested(id) : started(id, i);
      v = (await store.append(id, evs, { expectedVersion: v, messageId: `${id}-${i}` })).position;
    }
    await nats.server.kill();
    await nats.server.restart();
    // The client reconnects by itself; wait until the stream answers again.
    await expect.poll(async () => store.version(id).catch(() => -1), { timeout: 15_000, interval: 200 }).toBe(v);
    const after = await store.readStream(id);
    expect(after).toHaveLength(20);
    // Dedupe survives the restart too.
    const redo = await store.append(id, started(id, 19), { expectedVersion: 0, messageId: `${id}-19` });
    expect(redo).toEqual({ position: v, duplicate: true });
  });
});
