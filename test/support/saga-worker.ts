/**
 * A saga worker as a real child process, for crash, restart and multi-worker tests.
 * Configured by environment; CRASH_PLAN makes it SIGKILL itself once at a given step boundary.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createHetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import { ProvisionSaga } from '../../src/sagas/provision-saga.ts';
import { loadOrCreateSshKeyPair } from '../../src/ssh-keys/key-pair-store.ts';
import { openHostKeyStore } from '../../src/ssh-keys/host-key-store.ts';
import { playbookBundle } from '../../src/ansible/playbook-bundle.ts';
import { noopRunner } from './noop-runner.ts';

const env = z
  .object({
    NATS_URL: z.string(),
    SIM_URL: z.string(),
    SIM_TOKEN: z.string(),
    DATA_DIR: z.string(),
    RUNNER: z.enum(['ansible', 'noop']),
    CRASH_DIR: z.string().default(''),
    CRASH_PLAN: z.string().default('[]'),
  })
  .parse(process.env);
const POOL_SECRET_KEY = '5'.repeat(64);
const plan = z.array(z.object({ nodeId: z.string(), boundary: z.string(), step: z.string() })).parse(JSON.parse(env.CRASH_PLAN));


// Logs go to stderr: stdout carries the 'ready' handshake to the pool.
const logger = createLogger(process.env.PRESSLUFT_LOG_LEVEL ?? 'warn', process.stderr);
const store = await EventStore.open(env.NATS_URL, { streamName: 'EVT', subjectPrefix: 'pl', duplicateWindowMs: 600_000, logger });
const saga = new ProvisionSaga({
  store,
  provider: createHetznerProvider({ endpoint: env.SIM_URL, token: env.SIM_TOKEN, timeoutMs: 3000, logger }),
  runner: env.RUNNER === 'noop' ? noopRunner : new AnsiblePlaybookRunner({ logger, killGraceMs: 500 }),
  keyPair: await loadOrCreateSshKeyPair({ dataDir: env.DATA_DIR }),
  // Every worker of a pool shares one secret, as a deployment must: a create retried by another worker sends the same host key.
  hostKeys: await openHostKeyStore({ dataDir: env.DATA_DIR, encryptionKey: POOL_SECRET_KEY }),
  playbookBundle: await playbookBundle('ansible'),
  logger,
  playbook: 'test/fixtures/saga/provision-ok.yml',
  targetConnection: 'local',
  consumerName: 'saga',
  ackWaitMs: 3000,
  maxDeliver: 200,
  concurrency: 64,
  poll: { initialMs: 50, flatCount: 5, factor: 1.5, capMs: 300 },
  onBoundary: (boundary, step, nodeId) => {
    const hit = plan.findIndex((p) => p.nodeId === nodeId && p.boundary === boundary && p.step === step);
    if (hit < 0) return;
    const marker = join(env.CRASH_DIR, `crashed-${hit}`);
    if (existsSync(marker)) return;
    writeFileSync(marker, `${boundary} ${step} ${nodeId}\n`);
    process.kill(process.pid, 'SIGKILL');
  },
});
await saga.start();
process.stdout.write('ready\n');
const shutdown = async (): Promise<void> => {
  await saga.stop();
  await store.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
