import { stat } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStore, StreamConfigMismatch } from '../../src/eventstore/event-store.ts';
import { useNatsServer } from '../support/nats.ts';
import { captureLogger } from '../support/silent-logger.ts';

const nats = useNatsServer({ auth: true, subjectPrefix: 'pa' });
const { logger } = captureLogger();
let store: EventStore;
let app: NatsConnection;
let operator: NatsConnection;

/** The server's first line to a raw TCP client: INFO {json}. */
const rawInfo = (port: number): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^INFO (\{.*\}) ?\r\n/.exec(buf);
      if (m?.[1]) {
        sock.destroy();
        resolve(JSON.parse(m[1]) as Record<string, unknown>);
      }
    });
    sock.once('error', reject);
  });

beforeAll(async () => {
  // The app's own start-up path under the app user: stream create/update/info, consumers, capture stream.
  store = await EventStore.open(nats.as('app'), { streamName: 'AUTH', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
  await store.ensureDurableConsumer({ name: 'auth-saga', filterSubject: store.allSubjects, ackWaitMs: 30_000, maxDeliver: 5 });
  await store.captureMaxDeliveries('auth-saga');
  app = await connect({ ...nats.as('app'), name: 'auth-test-app' });
  operator = await connect({ ...nats.as('operator'), name: 'auth-test-operator' });
});
afterAll(async () => {
  await store?.close();
  await app?.close();
  await operator?.close();
});

describe('the embedded nats-server with generated credentials', () => {
  it('keeps its config and credentials in 0600 files and its passwords out of argv', async () => {
    expect((await stat(nats.server.configFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(nats.dir, 'nats-credentials.json'))).mode & 0o777).toBe(0o600);
    const { readFile } = await import('node:fs/promises');
    const argv = await readFile(`/proc/${nats.server.pid}/cmdline`, 'utf8');
    expect(argv.split('\0')).toEqual(expect.arrayContaining(['-c', nats.server.configFile]));
    expect(argv).not.toContain(nats.credentials!.app.password);
    expect(argv).not.toContain(nats.credentials!.operator.password);
  });

  it('refuses an anonymous connection, and its INFO says auth_required', async () => {
    expect(await rawInfo(nats.server.port)).toMatchObject({ auth_required: true });
    await expect(connect({ servers: nats.server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: nats.server.url, user: 'pressluft-app', pass: 'wrong-password-wrong-password-xx', maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });

  it('lets the app user append and read its own subjects', async () => {
    const js = jetstream(app);
    const ack = await js.publish('pa.node.n1', 'x', { expect: { lastSubjectSequence: 0, streamName: 'AUTH' } });
    expect(await store.lastPosition()).toBe(ack.seq);
  });

  it('refuses the app user stream delete, purge and message delete', async () => {
    const jsm = await jetstreamManager(app, { timeout: 10_000 });
    await expect(jsm.streams.delete('AUTH')).rejects.toThrow(/permission/i);
    await expect(jsm.streams.purge('AUTH')).rejects.toThrow(/permission/i);
    await expect(jsm.streams.deleteMessage('AUTH', 1)).rejects.toThrow(/permission/i);
    expect((await (await jetstreamManager(operator)).streams.info('AUTH')).state.messages).toBe(1);
  });

  it('refuses the app user a forged advisory on $JS.EVENT.>', async () => {
    const subject = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AUTH.auth-saga';
    const seen: string[] = [];
    const sub = operator.subscribe('$JS.EVENT.>', { callback: (_e, m) => void seen.push(m.subject) });
    await operator.flush();
    const violation = (async () => {
      for await (const s of app.status()) if (s.type === 'error' && /permission/i.test(String(s.error))) return String(s.error);
      return '';
    })();
    app.publish(subject, JSON.stringify({ stream: 'AUTH', consumer: 'auth-saga', stream_seq: 1, deliveries: 5 }));
    await expect(violation).resolves.toMatch(/publish/i);
    await operator.flush();
    await new Promise((r) => setTimeout(r, 200));
    sub.unsubscribe();
    expect(seen).not.toContain(subject);
    // Nothing reached the capture stream either: the saga would read a forged advisory from there.
    expect((await (await jetstreamManager(operator)).streams.info('AUTH_MAX_DELIVERIES')).state.messages).toBe(0);
  });

  it('gives the operator user full rights for maintenance', async () => {
    const jsm = await jetstreamManager(operator);
    await jsm.streams.add({ name: 'SCRATCH', subjects: ['scratch.>'] });
    expect(await jsm.streams.delete('SCRATCH')).toBe(true);
  });

  it('refuses the app user a stream update: a new limit could make the server discard events', async () => {
    const jsm = await jetstreamManager(app, { timeout: 10_000 });
    await expect(jsm.streams.update('AUTH', { max_age: 1_000_000_000 })).rejects.toThrow(/permission/i);
    expect((await (await jetstreamManager(operator)).streams.info('AUTH')).config.max_age).toBe(0);
  });

  it('starts again as the app user without an update when the stream config is in force', async () => {
    const again = await EventStore.open(nats.as('app'), { streamName: 'AUTH', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
    await again.close();
  });

  it('refuses to start with STREAM_CONFIG_MISMATCH when the operator changed the config, and starts once the operator puts it back', async () => {
    const jsm = await jetstreamManager(operator);
    const { config } = await jsm.streams.info('AUTH');
    await jsm.streams.update('AUTH', { ...config, max_msgs: 1_000_000 });
    const refused = await EventStore.open(nats.as('app'), { streamName: 'AUTH', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamConfigMismatch);
    expect((refused as StreamConfigMismatch).code).toBe('STREAM_CONFIG_MISMATCH');
    expect((refused as StreamConfigMismatch).details).toMatchObject({ stream: 'AUTH', problems: ['max_msgs is 1000000'] });
    expect((refused as Error).message).toMatch(/update was refused.*permission/i);
    // An operator (or any user with the update right) starting pressluft fixes it.
    const asOperator = await EventStore.open(nats.as('operator'), { streamName: 'AUTH', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
    await asOperator.close();
    expect((await jsm.streams.info('AUTH')).config.max_msgs).toBe(-1);
    const again = await EventStore.open(nats.as('app'), { streamName: 'AUTH', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
    await again.close();
  });
});
