import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStore, StreamConfigMismatch } from '../../src/eventstore/event-store.ts';
import { toEnvelopes } from '../../src/events/envelope.ts';
import { event } from '../../src/events/node-events.ts';
import { startNatsCluster, type NatsCluster } from '../support/nats-cluster.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

const { logger } = captureLogger();
let dir: string;
let cluster: NatsCluster;
const open = (user: 'app' | 'operator', replicas: number) =>
  EventStore.open(cluster.as(user), { streamName: 'R3', subjectPrefix: 'r3', duplicateWindowMs: 120_000, replicas, logger });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-r3-'));
  cluster = await startNatsCluster({ dir, auth: true, subjectPrefix: 'r3' });
});
afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('PRESSLUFT_STREAM_REPLICAS=3 on a 3-node nats-server cluster', () => {
  it('creates the stream, the durable consumers and the capture stream with 3 replicas, as the app user, and reads them back', async () => {
    const store = await open('app', 3);
    try {
      await store.ensureDurableConsumer({ name: 'r3-saga', filterSubject: store.allSubjects, ackWaitMs: 30_000, maxDeliver: 5 });
      const { stream: captured } = await store.captureMaxDeliveries('r3-saga');
      const nc = await connect(cluster.as('operator'));
      try {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info('R3');
        expect(info.config.num_replicas).toBe(3);
        expect(cluster.names).toContain(info.cluster?.leader);
        expect(info.cluster?.replicas?.map((r) => r.name).sort()).toEqual(cluster.names.filter((n) => n !== info.cluster?.leader).sort());
        expect((await jsm.consumers.info('R3', 'r3-saga')).config.num_replicas).toBe(3);
        expect((await jsm.streams.info(captured)).config.num_replicas).toBe(3);
      } finally {
        await nc.close();
      }
      const requested = toEnvelopes('n1', [event('ProvisionRequested', { nodeId: 'n1', jobId: 'n1-j1', ...spec(), maxAttempts: 3, policy: policy(), reprovision: false })], ctx());
      const ack = await store.append('n1', requested, { expectedVersion: 0, messageId: 'n1-1' });
      expect(await store.version('n1')).toBe(ack.position);
      expect((await store.readStream('n1')).map((d) => d.position)).toEqual([ack.position]);
    } finally {
      await store.close();
    }
  });

  it('refuses a start whose replicas differ from the stream (the app user may not update it) with STREAM_CONFIG_MISMATCH', async () => {
    const refused = await open('app', 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamConfigMismatch);
    expect((refused as StreamConfigMismatch).details).toMatchObject({ problems: ['num_replicas is 3, want 1'] });
  });

  it('starts again with the same replicas without updating anything', async () => {
    const store = await open('app', 3);
    await store.close();
  });
});
