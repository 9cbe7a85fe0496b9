import { BUNDLE, TEST_CONSISTENCY_WAIT_MS } from './api-harness.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { buildApiServer, type ApiDeps } from '../../src/api/server.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { useNatsServer } from '../support/nats.ts';
import { policy } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

export const TOKEN = 'listening-token-0123456789';

export interface ListeningApi {
  app: FastifyInstance;
  metrics: Metrics;
  /** Every log line the app wrote (pino JSON, level info and up). */
  logLines: string[];
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
}

/**
 * The API listening on 127.0.0.1, port 0, over a real nats-server and a SQLite read model:
 * what sockets, timeouts, request logs and /metrics need, which inject() cannot show.
 */
export const useListeningApi = (over: Partial<ApiDeps> = {}, subjectPrefix = 'pl'): ListeningApi => {
  const nats = useNatsServer();
  const h = {} as ListeningApi;
  let store: EventStore | undefined;
  let projector: Projector | undefined;
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-listening-'));
    const { logger, lines } = captureLogger('info');
    h.logLines = lines;
    store = await EventStore.open(nats.server.url, { streamName: subjectPrefix.toUpperCase(), subjectPrefix, duplicateWindowMs: 120_000, logger });
    projector = new Projector(store, { dbPath: join(dir, 'read-model.sqlite'), logger });
    projector.start();
    h.metrics = new Metrics();
    h.app = buildApiServer({
      store,
      repo: new NodeRepository(store),
      projector,
      queries: new ReadModelQueries(projector.db),
      metrics: h.metrics,
      policy: policy(),
      playbookBundle: BUNDLE,
      apiToken: TOKEN,
      logger,
      consistencyWaitMs: TEST_CONSISTENCY_WAIT_MS,
      ...over,
    });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = h.app.server.address();
    if (!addr || typeof addr !== 'object') throw new Error('not listening');
    h.port = addr.port;
    h.url = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await h.app?.close();
    await projector?.stop();
    projector?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return h;
};
