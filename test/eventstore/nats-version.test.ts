import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStore, NatsVersionUnsupported } from '../../src/eventstore/event-store.ts';
import { assertServerSupportsReplicas } from '../../src/eventstore/nats-connection.ts';
import { captureLogger } from '../support/silent-logger.ts';

/**
 * Debian 12's nats-server 2.9.10 is no longer installed here, so an old server is played by a
 * loopback TCP peer that speaks just enough of the client protocol: INFO (with the version the
 * client reads), then PONG to every PING. The refusal must come before any JetStream call.
 */
let server: Server;
let port = 0;
const sockets = new Set<Socket>();
const jetStreamRequests: string[] = [];

beforeAll(async () => {
  server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.write(`INFO ${JSON.stringify({ server_id: 'OLD', server_name: 'old', version: '2.9.10', proto: 1, go: 'go1.19', host: '127.0.0.1', port, headers: true, max_payload: 1048576, jetstream: true })}\r\n`);
    sock.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\r\n')) {
        if (line.startsWith('PING')) sock.write('PONG\r\n');
        if (line.startsWith('PUB $JS.API')) jetStreamRequests.push(line);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe('the nats-server version floor for replicated streams', () => {
  it('refuses replicas > 1 below 2.10 and accepts 2.10 and later, or one replica anywhere', () => {
    expect(() => assertServerSupportsReplicas('2.9.10', 3)).toThrow(NatsVersionUnsupported);
    expect(() => assertServerSupportsReplicas('2.9.21', 3)).toThrow(/older than 2\.10\.0/);
    expect(() => assertServerSupportsReplicas('2.10.0', 3)).not.toThrow();
    expect(() => assertServerSupportsReplicas('2.10.27', 3)).not.toThrow();
    expect(() => assertServerSupportsReplicas('2.9.10', 1)).not.toThrow();
  });

  it('refuses to open the store with NATS_VERSION_UNSUPPORTED on a 2.9.10 server when replicas is 3, before any JetStream call', async () => {
    const { logger } = captureLogger();
    const refused = await EventStore.open(`nats://127.0.0.1:${port}`, { streamName: 'OLD', subjectPrefix: 'old', duplicateWindowMs: 60_000, replicas: 3, logger }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NatsVersionUnsupported);
    expect(refused).toMatchObject({ code: 'NATS_VERSION_UNSUPPORTED', details: { version: '2.9.10', replicas: 3, minimum: '2.10.0' } });
    expect(jetStreamRequests).toEqual([]);
  });
});
