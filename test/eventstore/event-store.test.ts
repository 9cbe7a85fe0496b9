import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EventStore, WrongExpectedVersion } from '../../src/eventstore/event-store.ts';
import { versionBelow } from '../../src/eventstore/nats-connection.ts';
import { toEnvelopes } from '../../src/events/envelope.ts';
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
    // Read back through a connection of the test's own: the store exposes no client handles.
    const nc = await connect({ servers: nats.server.url });
    const info = await (await jetstreamManager(nc)).streams.info('EVT');
    const serverVersion = nc.info?.version ?? '';
    await nc.close();
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true, allow_direct: true, storage: 'file', duplicate_window: 120_000_000_000 });
    expect(versionBelow('2.9.10', '2.10.0')).toBe(true);
    expect(versionBelow('2.10.0', '2.10.0')).toBe(false);
    expect(versionBelow('2.11.3', '2.10.0')).toBe(false);
    if (versionBelow(serverVersion, '2.10.0')) expect(lines.some((l) => l.includes('clustered (R3) deployments need nats-server >= 2.10'))).toBe(true);
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

  it('opens from a comma-separated URL list and from connection options, owns the connection and reports it closed', async () => {
    const url = nats.server.url;
    const fromList = await EventStore.open(`${url}, ${url}`, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
    expect(await fromList.ping()).toBe('ok');
    await fromList.close();
    const fromOptions = await EventStore.open({ servers: [url], name: 'pressluft-test' }, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 120_000, logger });
    expect(fromOptions.connectionClosed).toBe(false);
    await fromOptions.close();
    expect(fromOptions.connectionClosed).toBe(true);
    expect(await fromOptions.ping()).toBe('closed');
  });

  it('ensures a durable consumer with its config asserted, and reports its delivered and acked positions', async () => {
    const id = 'n-durable';
    const first = await store.append(id, requested(id), { expectedVersion: 0, messageId: `${id}-0` });
    expect(await store.durableConsumerState('durable-test')).toBeNull();
    await store.ensureDurableConsumer({ name: 'durable-test', filterSubject: store.subjectFor(id), ackWaitMs: 5000, maxDeliver: 7 });
    // Again with new settings: updated in place, and read back.
    await store.ensureDurableConsumer({ name: 'durable-test', filterSubject: store.subjectFor(id), ackWaitMs: 6000, maxDeliver: 9 });
    const deliveries = await store.consume('durable-test', { maxMessages: 4 });
    for await (const d of deliveries) {
      expect({ seq: d.seq, subject: d.subject, count: d.info.deliveryCount }).toEqual({ seq: first.position, subject: 'pl.node.n-durable', count: 1 });
      d.ack();
      break;
    }
    await deliveries.close();
    await expect.poll(() => store.durableConsumerState('durable-test'), { timeout: 20_000 }).toEqual({ deliveredStreamSeq: first.position, ackFloorStreamSeq: first.position });
  });

  it('follows one node from a position: its history after it, then what is appended, and nothing of other nodes', async () => {
    const id = 'n-follow';
    const a = await store.append(id, requested(id), { expectedVersion: 0, messageId: `${id}-0` });
    const b = await store.append(id, started(id, 1), { expectedVersion: a.position, messageId: `${id}-1` });
    const stop = new AbortController();
    const seen: number[] = [];
    const following = (async () => {
      for await (const d of store.followStream(id, a.position, { signal: stop.signal })) {
        seen.push(d.position);
        if (seen.length === 2) stop.abort();
      }
    })();
    await store.append('n-follow-other', requested('n-follow-other'), { expectedVersion: 0, messageId: 'n-follow-other-0' });
    const c = await store.append(id, started(id, 2), { expectedVersion: b.position, messageId: `${id}-2` });
    await following;
    expect(seen).toEqual([b.position, c.position]);
  });

  it('publishes and subscribes Ansible progress per job, on token-safe job ids only', async () => {
    const got: unknown[] = [];
    const unsubscribe = store.subscribeProgress('j-progress', (p) => void got.push(p));
    await store.ping();
    store.publishProgress('j-progress', { index: 1 });
    store.publishProgress('j-other', { index: 2 });
    await store.ping();
    await expect.poll(() => got, { timeout: 10_000 }).toEqual([{ index: 1 }]);
    unsubscribe();
    expect(() => store.publishProgress('j.bad', {})).toThrow(/token-safe/);
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
    await expect.poll(async () => store.version(id).catch(() => -1), { timeout: 45_000, interval: 200 }).toBe(v);
    const after = await store.readStream(id);
    expect(after).toHaveLength(20);
    // Dedupe survives the restart too.
    const redo = await store.append(id, started(id, 19), { expectedVersion: 0, messageId: `${id}-19` });
    expect(redo).toEqual({ position: v, duplicate: true });
  });
});
