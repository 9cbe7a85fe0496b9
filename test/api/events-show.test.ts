import { BUNDLE, TEST_CONSISTENCY_WAIT_MS } from './api-harness.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiServer } from '../../src/api/server.ts';
import { runCli } from '../../src/cli/main.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { useNatsServer } from '../support/nats.ts';
import { policy } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

const TOKEN = 'test-token-events-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const HCLOUD_LIKE = 'Zx9'.repeat(21) + 'q'; // 64 characters, shaped like a Hetzner token
const PEM = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----';
const POISON = `not json {"apiToken":"hunter2-hunter2","note":"ok"} HCLOUD_TOKEN=${HCLOUD_LIKE}\n${PEM}\nAuthorization: Bearer abc.def.ghi\n${'filler '.repeat(1000)}`;

const nats = useNatsServer();
const { logger } = captureLogger('warn');
let dir: string;
let store: EventStore;
let projector: Projector;
let app: FastifyInstance;
let raw: NatsConnection;

const call = (url: string, auth = true) => app.inject({ method: 'GET', url, headers: auth ? AUTH : {} });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-events-'));
  store = await EventStore.open(nats.server.url, { streamName: 'API', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
  projector = new Projector(store, { dbPath: join(dir, 'read-model.sqlite'), logger });
  projector.start();
  const queries = new ReadModelQueries(projector.db);
  app = buildApiServer({ store, repo: new NodeRepository(store), projector, queries, metrics: new Metrics(), policy: policy(), playbookBundle: BUNDLE, apiToken: TOKEN, logger, consistencyWaitMs: TEST_CONSISTENCY_WAIT_MS });
  await app.ready();
  raw = await connect({ servers: nats.server.url });
});
afterAll(async () => {
  await app?.close();
  await raw?.drain();
  await projector?.stop();
  projector?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /v1/events/:position and the broken-node report', () => {
  let good: { nodeId: string; jobId: string; position: number };
  let other: { nodeId: string; position: number };
  let poison: number;

  it('shows a stored message decoded, with its headers', async () => {
    const created = await app.inject({ method: 'POST', url: '/v1/nodes', headers: AUTH, payload: { name: 'web-1', serverType: 'cx22', location: 'fsn1' } });
    good = created.json();
    other = (await app.inject({ method: 'POST', url: '/v1/nodes', headers: AUTH, payload: { name: 'web-2', serverType: 'cx22', location: 'fsn1' } })).json();
    const res = await call(`/v1/events/${good.position}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      position: good.position,
      subject: `pa.node.${good.nodeId}`,
      nodeId: good.nodeId,
      storedAt: expect.any(String),
      headers: { 'Nats-Msg-Id': [`provision:${good.jobId}`] },
      decodes: true,
      events: [{ position: good.position, type: 'ProvisionRequested', correlationId: good.jobId, data: { name: 'web-1' } }],
      invalid: null,
    });
  });

  it('shows a message that does not decode as redacted, cut text, and reports its node broken', async () => {
    const h = natsHeaders();
    h.set('Nats-Msg-Id', `forged-${HCLOUD_LIKE}`);
    poison = (await jetstream(raw).publish(`pa.node.${good.nodeId}`, POISON, { headers: h })).seq;
    const res = await call(`/v1/events/${poison}`);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ decodes: boolean; events: null; headers: Record<string, string[]>; invalid: { reason: string; text: string; bytes: number; truncated: boolean } }>();
    expect(body).toMatchObject({ decodes: false, events: null, invalid: { bytes: Buffer.byteLength(POISON), truncated: true } });
    expect(body.invalid.reason).toContain(`at position ${poison}: not JSON`);
    expect(body.invalid.text).toHaveLength(4096);
    expect(body.invalid.text).toContain('"note":"ok"');
    for (const secret of ['hunter2', HCLOUD_LIKE, 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ', 'abc.def.ghi']) {
      expect(body.invalid.text).not.toContain(secret);
      expect(JSON.stringify(body.headers)).not.toContain(secret);
    }
    expect(body.invalid.text).toContain('[redacted private key]');
    expect(body.headers['Nats-Msg-Id']).toEqual(['forged-[redacted]']);

    // The poison broke its node only: a later command on another node is projected and readable.
    const later = (await app.inject({ method: 'POST', url: `/v1/nodes/${other.nodeId}/provision`, headers: AUTH })).statusCode;
    expect(later).toBe(409); // its first job is still queued: the decider answered from a healthy stream
    const third = (await app.inject({ method: 'POST', url: '/v1/nodes', headers: AUTH, payload: { name: 'web-3', serverType: 'cx22', location: 'fsn1' } })).json<{ nodeId: string; position: number }>();
    const node3 = await call(`/v1/nodes/${third.nodeId}?minPosition=${third.position}`);
    expect(node3.statusCode).toBe(200);
    expect(node3.headers['x-pressluft-stale']).toBeUndefined();
    expect(node3.json()).toMatchObject({ status: 'pending', projection: { broken: false } });

    const broken = await call(`/v1/nodes/${good.nodeId}`);
    expect(broken.json()).toMatchObject({ id: good.nodeId, status: 'pending', position: good.position, projection: { broken: true, position: poison, skipped: 0 } });
    const status = await call('/v1/projections');
    expect(status.json()).toMatchObject({
      projections: [{ error: null, retrying: null, brokenNodeCount: 1, brokenNodes: [{ nodeId: good.nodeId, position: poison, reason: expect.stringContaining('not JSON') }] }],
    });

    // A rebuild through the API decodes the log again and reports the same.
    const before = { node: broken.json(), broken: status.json<{ projections: Array<{ brokenNodes: unknown }> }>().projections[0]!.brokenNodes };
    expect((await app.inject({ method: 'POST', url: '/v1/projections/rebuild', headers: AUTH })).statusCode).toBe(200);
    expect((await call(`/v1/nodes/${good.nodeId}`)).json()).toEqual(before.node);
    expect((await call('/v1/projections')).json()).toMatchObject({ projections: [{ brokenNodeCount: 1, brokenNodes: before.broken }] });
  });

  it('answers 404 not_found for a position past the end, 400 for position 0, 401 without the token', async () => {
    const missing = await call(`/v1/events/${poison + 1000}`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'not_found' } });
    expect((await call('/v1/events/0')).json()).toMatchObject({ error: { code: 'bad_request' } });
    expect((await call('/v1/events/abc')).statusCode).toBe(400);
    expect((await call(`/v1/events/${good.position}`, false)).statusCode).toBe(401);
  });

  it('`pressluft events show` prints both, and the stable code for a missing position', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const env = { PRESSLUFT_URL: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, PRESSLUFT_API_TOKEN: TOKEN, PRESSLUFT_DATA_DIR: dir };
    const run = async (argv: string[]) => {
      let out = '';
      let err = '';
      const code = await runCli(argv, { stdout: { write: (s: string) => (out += s) } as never, stderr: { write: (s: string) => (err += s) } as never }, env);
      return { code, out, err };
    };
    const shown = await run(['events', 'show', String(good.position)]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`Nats-Msg-Id: provision:${good.jobId}`);
    expect(shown.out).toContain('ProvisionRequested v1');
    const bad = await run(['events', 'show', String(poison)]);
    expect(bad.code).toBe(0);
    expect(bad.out).toContain('decodes    NO:');
    expect(bad.out).not.toContain(HCLOUD_LIKE);
    const json = await run(['events', 'show', String(poison), '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ position: poison, decodes: false });
    const missing = await run(['events', 'show', String(poison + 1000)]);
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining('error [not_found]') });
    expect((await run(['events', 'show', 'zero'])).code).toBe(2);
  });
});
