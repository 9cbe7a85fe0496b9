import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import { NodeRepository } from '../commands/node-repository.ts';
import { EventStore } from '../eventstore/event-store.ts';
import { startNatsServer, type NatsProcess } from '../eventstore/nats-process.ts';
import { createLogger, type Logger } from '../logging/logger.ts';
import { Projector } from '../projections/projector.ts';
import { ReadModelQueries } from '../projections/read-model-queries.ts';
import { AnsiblePlaybookRunner } from '../ansible/ansible-playbook-runner.ts';
import type { AnsibleRunner } from '../ansible/runner-port.ts';
import { createHetznerProvider } from '../providers/hetzner/hetzner-provider.ts';
import { startHetznerSimulator, type HetznerSimulator } from '../providers/hetzner/simulator/start-simulator.ts';
import type { ProviderPort } from '../providers/provider-port.ts';
import { ProvisionSaga } from '../sagas/provision-saga.ts';
import type { PollSchedule } from '../sagas/provision-process.ts';
import { loadOrCreateSshKeyPair } from '../ssh-keys/key-pair-store.ts';
import { buildApiServer } from '../api/server.ts';
import { loadOrCreateApiToken } from '../api/api-token.ts';
import { Metrics } from '../metrics/metrics.ts';

export interface ControlPlane {
  config: Config;
  logger: Logger;
  store: EventStore;
  repo: NodeRepository;
  projector: Projector;
  queries: ReadModelQueries;
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
}

export interface ControlPlaneOverrides {
  logger?: Logger;
  /** Replace the provider or the runner (tests and benchmarks); defaults follow the config. */
  provider?: ProviderPort;
  runner?: AnsibleRunner;
  poll?: PollSchedule;
}

/**
 * Wires the control plane from its config: NATS (embedded when NATS_URL is unset), the event
 * store, the projector, the saga and the HTTP API. `npm start` runs this via `pressluft serve`.
 */
export const startControlPlane = async (config: Config, o: ControlPlaneOverrides = {}): Promise<ControlPlane> => {
  const logger = o.logger ?? createLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => logger.error({ err: e }, 'shutdown step failed'));
  };
  try {
    let nats: NatsProcess | null = null;
    let natsUrl = config.nats.url;
    if (!natsUrl) {
      nats = await startNatsServer({ storeDir: join(config.dataDir, 'nats') });
      natsUrl = nats.url;
      cleanups.push(() => nats!.stop());
      // Worker processes and the CLI find the embedded server here.
      await writeFile(join(config.dataDir, 'nats-url'), `${natsUrl}\n`, { mode: 0o600 });
      logger.info({ natsUrl, storeDir: nats.storeDir }, 'started embedded nats-server (set NATS_URL to use your own)');
    }
    const store = await EventStore.open(natsUrl, { streamName: config.nats.stream, subjectPrefix: config.nats.subjectPrefix, duplicateWindowMs: config.nats.duplicateWindowMs, logger });
    cleanups.push(() => store.close());
    const repo = new NodeRepository(store);
    const metrics = new Metrics();

    const projector = new Projector(store, { dbPath: join(config.dataDir, 'read-model.sqlite'), logger });
    projector.start();
    cleanups.push(async () => {
      await projector.stop();
      projector.close();
    });
    const queries = new ReadModelQueries(projector.db);

    let simulator: HetznerSimulator | null = null;
    let saga: ProvisionSaga | null = null;
    if (config.role !== 'api') {
      let provider = o.provider;
      if (!provider) {
        let { endpoint, token } = config.hetzner;
        if (!token || !endpoint) {
          simulator = await startHetznerSimulator({ actionDurationMs: 1000 });
          cleanups.push(() => simulator!.close());
          endpoint = simulator.url;
          token = simulator.token;
          logger.warn({ endpoint }, 'HCLOUD_TOKEN is unset: using the built-in Hetzner SIMULATOR on loopback. No real server will be bought.');
        }
        provider = createHetznerProvider({ endpoint, token: token!, timeoutMs: 30_000, logger });
      }
      if (!config.ansible.wpCliPhar || !config.ansible.wpCliSha256) {
        // WP-CLI is never downloaded on a node (spec); without a local phar the wp_cli role refuses to run.
        logger.warn('PRESSLUFT_WP_CLI_PHAR and PRESSLUFT_WP_CLI_SHA256 are unset: provisioning will fail at the wp_cli role until they are set');
      }
      const keyPair = await loadOrCreateSshKeyPair({ dataDir: config.dataDir, encryptionKey: config.secretKeyHex });
      saga = new ProvisionSaga({
        store,
        provider,
        runner: o.runner ?? new AnsiblePlaybookRunner({ logger }),
        keyPair,
        logger,
        metrics,
        playbook: config.ansible.playbook,
        ansibleVars: ansibleVarsFrom(config),
        ackWaitMs: config.saga.ackWaitMs,
        maxDeliver: config.saga.maxDeliver,
        concurrency: config.saga.concurrency,
        poll: o.poll,
      });
      await saga.start();
      cleanups.push(() => saga!.stop());
    }

    const apiToken = await loadOrCreateApiToken({ dataDir: config.dataDir, fromEnv: config.http.apiToken, logger });
    let api: FastifyInstance | null = null;
    let url: string | null = null;
    if (config.role !== 'worker') {
      api = buildApiServer({ store, repo, projector, queries, metrics, policy: config.policy, apiToken, logger });
      await api.listen({ host: config.http.host, port: config.http.port });
      cleanups.push(() => api!.close());
      const addr = api.server.address();
      url = typeof addr === 'object' && addr ? `http://${config.http.host}:${addr.port}` : null;
      logger.info({ url }, 'pressluft API listening');
    }
    return { config, logger, store, repo, projector, queries, metrics, saga, api, url, apiToken, simulator, nats, stop };
  } catch (e) {
    await stop();
    throw e;
  }
};

/** Extra-vars from config that every provisioning run gets; node-derived vars are added by the saga. */
export const ansibleVarsFrom = (config: Config): Record<string, unknown> => ({
  pressluft_allow_test_distro: config.ansible.allowTestDistro,
  ...(config.ansible.wpCliPhar ? { wp_cli_phar_src: config.ansible.wpCliPhar } : {}),
  ...(config.ansible.wpCliSha256 ? { wp_cli_sha256: config.ansible.wpCliSha256 } : {}),
});
