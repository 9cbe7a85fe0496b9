import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiServer } from '../../src/api/server.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { useNatsServer } from '../support/nats.ts';
import { policy } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { BUNDLE, TOKEN, useApi } from './api-harness.ts';

const h = useApi();
const other = useNatsServer();
const { logger } = captureLogger('warn');
/** The saga's liveness as /healthz reads it; the saga's own tests show `alive` follows its consume loop. */
const saga = { alive: true };
let app: FastifyInstance;
let doomed: EventStore;

/** The API with a saga in its deps, over a store of its own that a test can close. */
const build = (store: EventStore): FastifyInstance =>
  buildApiServer({ store, repo: h.repo, projector: h.projector, queries: h.queries, metrics: new Metrics(), policy: policy(), playbookBundle: BUNDLE, apiToken: TOKEN, logger, saga } as Parameters<typeof buildApiServer>[0]);

beforeAll(async () => {
  app = build(h.store);
  await app.ready();
  doomed = await EventStore.open(other.server.url, { streamName: 'DOOMED', subjectPrefix: 'pd', duplicateWindowMs: 120_000, logger });
});
afterAll(async () => {
  await app.close();
  await doomed.close();
});

const get = async (a: FastifyInstance, url: string) => {
  const res = await a.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.json<{ status?: string; error?: { code: string; details?: Record<string, unknown> } }>() };
};

describe('/healthz and /readyz name the core loop that is down', () => {
  it('answers ok and ready while NATS, the projector and the saga run', async () => {
    expect(await h.projector.waitFor(await h.store.lastPosition(), 30_000)).toBe(true);
    expect(await get(app, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await get(app, '/readyz')).status).toBe(200);
  });

  it('fails both when the saga consumer loop is dead', async () => {
    saga.alive = false;
    try {
      expect(await get(app, '/healthz')).toMatchObject({ status: 503, body: { error: { code: 'not_alive', details: { parts: ['saga'] } } } });
      expect(await get(app, '/readyz')).toMatchObject({ status: 503, body: { error: { code: 'not_ready', details: { part: 'saga' } } } });
    } finally {
      saga.alive = true;
    }
  });

  it('fails both when the NATS connection is closed', async () => {
    const closedApp = build(doomed);
    await closedApp.ready();
    await doomed.close();
    expect(await get(closedApp, '/healthz')).toMatchObject({ status: 503, body: { error: { code: 'not_alive', details: { parts: ['nats'] } } } });
    expect(await get(closedApp, '/readyz')).toMatchObject({ status: 503, body: { error: { code: 'not_ready', details: { part: 'nats' } } } });
    await closedApp.close();
  });
});
