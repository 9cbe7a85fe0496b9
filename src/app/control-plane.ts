import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import { NodeRepository } from '../commands/node-repository.ts';
import { EventStore } from '../eventstore/event-store.ts';
import type { NatsProcess } from '../eventstore/nats-process.ts';
import { natsConnectionOptions } from '../eventstore/nats-auth.ts';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { embeddedNatsTarget, startEmbeddedNats } from './embedded-nats.ts';
import { assertLogNotBehind } from './log-position-guard.ts';
import { startIdleHeapReducer } from './idle-heap-reducer.ts';
import { createLogger, type Logger } from '../logging/logger.ts';
import { Projector } from '../projections/projector.ts';
import { ReadModelQueries } from '../projections/read-model-queries.ts';
import { AnsiblePlaybookRunner } from '../ansible/ansible-playbook-runner.ts';
import type { AnsibleRunner } from '../ansible/runner-port.ts';
import { sweepAbandonedRuns } from '../ansible/run-dir.ts';
import { wpCliPharPort } from '../wp-cli/wp-cli-phar.ts';
import { wpCliSourceFrom } from '../wp-cli/wp-cli-source.ts';
import { createHetznerProvider } from '../providers/hetzner/hetzner-provider.ts';
import { startHetznerSimulator, type HetznerSimulator } from '../simulators/hetzner/start-simulator.ts';
import type { ProviderPort } from '../providers/provider-port.ts';
import { ProvisionSaga } from '../sagas/provision-saga.ts';
import type { PollSchedule } from '../sagas/provision-process.ts';
import { loadOrCreateSshKeyPair } from '../ssh-keys/key-pair-store.ts';
import { openHostKeyStore } from '../ssh-keys/host-key-store.ts';
import { playbookBundle } from '../ansible/playbook-bundle.ts';
import { buildApiServer } from '../api/server.ts';
import { loadOrCreateApiToken } from '../api/api-token.ts';
import { Metrics } from '../metrics/metrics.ts';
import { AppError } from '../errors/app-error.ts';

export interface ControlPlane {
  config: Config;
  logger: Logger;
  store: EventStore;
  repo: NodeRepository;
  /** The read model's projector and queries; a worker has none, and asking throws ROLE_HAS_NO_READ_MODEL. */
  readonly projector: Projector;
  readonly queries: ReadModelQueries;
  metrics: Metrics;
  saga: ProvisionSaga | null;
  api: FastifyInstance | null;
  /** http://host:port of the API, when it runs. */
  url: string | null;
  apiToken: string;
  /** The in-process Hetzner simulator, when HCLOUD_TOKEN is unset. */
  simulator: HetznerSimulator | null;
  nats: NatsProcess | null;
  stop(): Promise<void>;
  /** Resolves when a core part died for good (the embedded nats-server): the process must exit non-zero (ADR 0030). */
  fatal: Promise<Error>;
  /** The shutdown step running now, for the deadline's log line. */
  readonly shutdownStep: string | null;
}

export interface ControlPlaneOverrides {
  logger?: Logger;
  /** Replace the provider or the runner (tests and benchmarks); defaults follow the config. */
  provider?: ProviderPort;
  runner?: AnsibleRunner;
  poll?: PollSchedule;
  /** `local` runs plays on the control plane itself (tests only); default `ssh`. */
  targetConnection?: 'ssh' | 'local';
}

/**
 * Wires the control plane from its config: NATS (embedded when NATS_URL is unset), the event
 * store, the projector, the saga and the HTTP API. `npm start` runs this via `pressluft serve`.
 */
export const startControlPlane = async (config: Config, o: ControlPlaneOverrides = {}): Promise<ControlPlane> => {
  const logger = o.logger ?? createLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Whatever the role: a run killed with its process leaves no key material, agent or playbook behind.
  await sweepAbandonedRuns(logger);
  const cleanups: Array<() => Promise<unknown>> = [];
  let shutdownStep: string | null = null;
  const stop = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      shutdownStep = c.name || 'unnamed step';
      await c().catch((e: unknown) => logger.error({ err: e, step: shutdownStep }, 'shutdown step failed'));
    }
    shutdownStep = null;
  };
  let died: (e: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => (died = resolve));
  try {
    const embedded = await connectOrStartNats(config, logger, (e) => died(e));
    const nats = embedded.process;
    if (embedded.stop) cleanups.push(named('nats-server', embedded.stop));
    const store = await EventStore.open(embedded.target, {
      streamName: config.nats.stream,
      subjectPrefix: config.nats.subjectPrefix,
      duplicateWindowMs: config.nats.duplicateWindowMs,
      replicas: config.nats.replicas,
      logger,
    });
    cleanups.push(named('event store connection', () => store.close()));
    const repo = new NodeRepository(store);
    const metrics = new Metrics();

    // Only a process that answers queries keeps a read model: a worker on the same data dir as an
    // api process must not open a second projector on its SQLite file.
    const projector = config.role === 'worker' ? null : new Projector(store, { dbPath: join(config.dataDir, 'read-model.sqlite'), logger });
    if (projector) cleanups.push(named('read model', async () => projector.close()));
    // Before anything reads or acts: a log behind its read model or its consumer is refused (ADR 0030).
    await assertLogNotBehind({ store, readModelCheckpoint: projector?.checkpoint ?? 0, consumerNames: [SAGA_CONSUMER] });
    projector?.start();
    if (projector) cleanups.push(named('projector', () => projector.stop()));
    const queries = projector ? new ReadModelQueries(projector.db) : null;

    // What `--expect-playbook` is compared with and AnsibleStarted records: the product's own ansible/ tree, hashed once.
    const bundle = await playbookBundle(fileURLToPath(new URL('../../ansible', import.meta.url)));
    const apiToken = await loadOrCreateApiToken({ dataDir: config.dataDir, fromEnv: config.http.apiToken, logger });
    let simulator: HetznerSimulator | null = null;
    let saga: ProvisionSaga | null = null;
    if (config.role !== 'api') {
      let provider = o.provider;
      if (!provider) {
        let { endpoint, token } = config.hetzner;
        if (!token || !endpoint) {
          simulator = await startHetznerSimulator({ actionDurationMs: 1000 });
          cleanups.push(named('hetzner simulator', () => simulator!.close()));
          endpoint = simulator.url;
          token = simulator.token;
          logger.warn({ endpoint }, 'HCLOUD_TOKEN is unset: using the built-in Hetzner SIMULATOR on loopback. No real server will be bought.');
        }
        provider = createHetznerProvider({ endpoint, token: token!, timeoutMs: config.hetzner.timeoutMs, logger });
      }
      const wpCliSource = wpCliSourceFrom(config);
      if (!wpCliSource) {
        // WP-CLI is never downloaded on a node (spec); without a phar the wp_cli role refuses to run.
        logger.warn('no WP-CLI phar: set PRESSLUFT_WP_CLI_PHAR and PRESSLUFT_WP_CLI_SHA256 (or HCLOUD_TOKEN / PRESSLUFT_WP_CLI_URL for the pinned release); provisioning fails at the wp_cli role until then');
      }
      const keyPair = await loadOrCreateSshKeyPair({ dataDir: config.dataDir, encryptionKey: config.secretKeyHex });
      saga = new ProvisionSaga({
        store,
        provider,
        // The generated API token is not in the environment, so the runner is told it explicitly.
        runner: o.runner ?? new AnsiblePlaybookRunner({ logger, secrets: [config.hetzner.token, config.secretKeyHex, apiToken].filter((s): s is string => !!s) }),
        keyPair,
        hostKeys: await openHostKeyStore({ dataDir: config.dataDir, encryptionKey: config.secretKeyHex }),
        playbookBundle: bundle,
        logger,
        metrics,
        playbook: config.ansible.playbook,
        ansibleVars: ansibleVarsFrom(config),
        ensureWpCliPhar: wpCliSource ? wpCliPharPort(wpCliSource) : undefined,
        targetConnection: o.targetConnection,
        consumerName: SAGA_CONSUMER,
        ackWaitMs: config.saga.ackWaitMs,
        maxDeliver: config.saga.maxDeliver,
        concurrency: config.saga.concurrency,
        poll: o.poll,
        // An api+saga process reports a dead loop on /healthz; a worker has no HTTP port, so it exits (code 70, like a dead nats-server).
        onLoopEnded: config.role === 'worker' ? () => died(new AppError('SAGA_LOOP_ENDED', 'the saga consumer loop ended unexpectedly', true)) : undefined,
      });
    }

    let api: FastifyInstance | null = null;
    let url: string | null = null;
    // The API answers from the read model, so it runs exactly where one is kept: not in a worker.
    if (projector && queries) {
      const tlsFiles = config.http.tls;
      const tls = tlsFiles ? { cert: await readFile(tlsFiles.certFile), key: await readFile(tlsFiles.keyFile) } : undefined;
      api = buildApiServer({ store, repo, projector, queries, metrics, policy: config.policy, apiToken, logger, tls, limits: { maxConnections: config.http.maxConnections }, saga, playbookBundle: bundle });
      await api.listen({ host: config.http.host, port: config.http.port });
      cleanups.push(named('http api', () => api!.close()));
      const addr = api.server.address();
      url = typeof addr === 'object' && addr ? `${tls ? 'https' : 'http'}://${config.http.host}:${addr.port}` : null;
      logger.info({ url }, 'pressluft API listening');
    }
    // The saga starts last: after a crash it picks up every unacked step at once, and that burst must not starve the API's boot.
    if (saga) {
      await saga.start();
      cleanups.push(named('saga', () => saga!.stop()));
    }
    // Hands the heap of a burst back once the process falls idle (V8 alone does not, in Node).
    const heapReducer = startIdleHeapReducer(logger);
    cleanups.push(named('idle heap reducer', async () => heapReducer.stop()));
    return {
      config, logger, store, repo, metrics, saga, api, url, apiToken, simulator, nats, stop, fatal,
      get projector() {
        return projector ?? noReadModel(config.role);
      },
      get queries() {
        return queries ?? noReadModel(config.role);
      },
      get shutdownStep() {
        return shutdownStep;
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
};

/** Extra-vars from config that every provisioning run gets; the saga adds the node's and the verified WP-CLI phar's. */
export const ansibleVarsFrom = (config: Config): Record<string, unknown> => ({
  pressluft_allow_test_distro: config.ansible.allowTestDistro,
});

/** The saga's durable consumer; the start-up guard checks its position too. */
export const SAGA_CONSUMER = 'pressluft-saga';

export class RoleHasNoReadModel extends AppError {
  constructor(role: string) {
    super('ROLE_HAS_NO_READ_MODEL', `a ${role} process keeps no read model: ask an api (or all) process`, false, { role });
  }
}

const noReadModel = (role: string): never => {
  throw new RoleHasNoReadModel(role);
};

/** Names a shutdown step, so a hung shutdown can say which step hung. */
const named = <T extends () => Promise<unknown>>(name: string, fn: T): T => Object.defineProperty(fn, 'name', { value: name });

/**
 * NATS_URL set: the external server with the configured auth. Unset: a worker joins the embedded
 * server that a `serve` on the same data dir runs; anything else starts that embedded server.
 */
const connectOrStartNats = async (
  config: Config,
  logger: Logger,
  onDied: (e: Error) => void,
): Promise<{ target: NodeConnectionOptions; process: NatsProcess | null; stop: (() => Promise<void>) | null }> => {
  if (config.nats.url) return { target: natsConnectionOptions(config.nats.url, config.nats.auth), process: null, stop: null };
  const joined = config.role === 'worker' ? await embeddedNatsTarget(config.dataDir) : null;
  if (joined) {
    logger.info({ natsUrl: joined.servers }, 'joining the embedded nats-server of this data dir');
    return { target: joined, process: null, stop: null };
  }
  const embedded = await startEmbeddedNats({ dataDir: config.dataDir, subjectPrefix: config.nats.subjectPrefix, logger, onDied });
  return { target: embedded.target, process: embedded.process, stop: embedded.stop };
};
