import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import type { PlaybookBundle } from '../../src/ansible/playbook-bundle.ts';
import { buildApiServer } from '../../src/api/server.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { useNatsServer } from '../support/nats.ts';
import { policy } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

export const TOKEN = 'test-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
/** The bundle the test control plane claims to run: `expectPlaybook` is compared with it. */
export const BUNDLE: PlaybookBundle = { digest: createHash('sha256').update('test bundle').digest('hex'), version: '0.0.0-test' };

export interface ApiHarness {
  app: FastifyInstance;
  store: EventStore;
  repo: NodeRepository;
  projector: Projector;
  queries: ReadModelQueries;
  logLines: string[];
  /** An authenticated JSON request through fastify's inject. */
  call(method: 'GET' | 'POST', url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** `call` through a second app over the same parts whose ?minPosition= bound is `consistencyWaitMs` (closed with the harness). */
  callWithWait(consistencyWaitMs: number): Promise<ApiHarness['call']>;
}

/**
 * How long a ?minPosition= read waits by default in tests: far above the projector's lag on a
 * loaded 2-core CI machine, and still below the 60 s test timeout, so a write that is never
 * projected still fails the test (stale flag, 404).
 */
export const TEST_CONSISTENCY_WAIT_MS = 30_000;

/**
 * The API over a real nats-server (one per test file), a real JetStream store and a SQLite
 * read model on disk; no saga, so jobs stay where the test puts them.
 */
export const useApi = (o: { consistencyWaitMs?: number; startProjector?: boolean } = {}): ApiHarness => {
  const nats = useNatsServer();
  const { logger, lines } = captureLogger('warn');
  const h = { logLines: lines } as ApiHarness;
  let dir = '';
  const others: FastifyInstance[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-api-'));
    h.store = await EventStore.open(nats.server.url, { streamName: 'API', subjectPrefix: 'pa', duplicateWindowMs: 120_000, logger });
    h.repo = new NodeRepository(h.store);
    h.projector = new Projector(h.store, { dbPath: join(dir, 'read-model.sqlite'), logger });
    if (o.startProjector ?? true) h.projector.start();
    h.queries = new ReadModelQueries(h.projector.db);
    const build = (consistencyWaitMs: number): FastifyInstance => buildApiServer({
      store: h.store,
      repo: h.repo,
      projector: h.projector,
      queries: h.queries,
      metrics: new Metrics(),
      policy: policy(),
      playbookBundle: BUNDLE,
      apiToken: TOKEN,
      logger,
      consistencyWaitMs,
      sseHeartbeatMs: 200,
    });
    const callThrough = (app: FastifyInstance): ApiHarness['call'] => (method, url, body, headers = {}) =>
      app.inject({ method, url, headers: { ...AUTH, ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
    h.app = build(o.consistencyWaitMs ?? TEST_CONSISTENCY_WAIT_MS);
    await h.app.ready();
    h.call = callThrough(h.app);
    h.callWithWait = async (consistencyWaitMs) => {
      const app = build(consistencyWaitMs);
      others.push(app);
      await app.ready();
      return callThrough(app);
    };
  });
  afterAll(async () => {
    for (const app of others) await app.close();
    await h.app?.close();
    await h.projector?.stop();
    h.projector?.close();
    await h.store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return h;
};


export const nodeBody = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'web-1', serverType: 'cx22', location: 'fsn1', ...over });
