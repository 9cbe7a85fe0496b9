import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import { EventStore } from '../../src/eventstore/event-store.ts';
import { createHetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import { ProvisionSaga } from '../../src/sagas/provision-saga.ts';
import type { HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { wpCliPharPort } from '../../src/wp-cli/wp-cli-phar.ts';
import { useNatsServer } from '../support/nats.ts';
import { sagaTestDeps } from './saga-deps.ts';
import { captureLogger } from '../support/silent-logger.ts';
import { eventTypes, fakeSshd, requestProvision, startSimulator, waitTerminal } from '../support/saga-harness.ts';

// The saga checks the WP-CLI phar before any provider call (issue 11.6): no phar, no server bought.
const nats = useNatsServer();
const { logger } = captureLogger('warn');
const STAND_IN = Buffer.from('<?php echo "WP-CLI 0.0.0-pressluft-stand-in\\n";\n');
let store: EventStore;
let repo: NodeRepository;
let sim: HetznerSimulator;
let sshd: Awaited<ReturnType<typeof fakeSshd>>;
let pharServer: Server;
let base = '';
let dir = '';

const runSaga = async (consumer: string, pharPath: string, nodeId: string) => {
  const saga = new ProvisionSaga({
    store,
    provider: createHetznerProvider({ endpoint: sim.url, token: sim.token, timeoutMs: 2000, logger }),
    runner: new AnsiblePlaybookRunner({ logger }),
    keyPair: generateOpenSshEd25519('pressluft-test'),
    hostKeys: deps.hostKeys,
    playbookBundle: deps.playbookBundle,
    logger,
    playbook: 'test/fixtures/saga/provision-needs-wp-cli.yml',
    targetConnection: 'local',
    consumerName: consumer,
    ackWaitMs: 3000,
    poll: { initialMs: 50, flatCount: 5, factor: 1.5, capMs: 200 },
    ensureWpCliPhar: wpCliPharPort({
      kind: 'release',
      release: { version: '0.0.0', url: `${base}${pharPath}`, sha512: createHash('sha512').update(STAND_IN).digest('hex') },
      cacheDir: join(dir, consumer),
    }),
  });
  await saga.start();
  try {
    await requestProvision(repo, nodeId, { sshPort: sshd.port });
    return await waitTerminal(store, nodeId, 60_000);
  } finally {
    await saga.stop();
  }
};

let deps: Awaited<ReturnType<typeof sagaTestDeps>>;
beforeAll(async () => {
  deps = await sagaTestDeps();
  dir = await mkdtemp(join(tmpdir(), 'pressluft-saga-wpcli-'));
  store = await EventStore.open(nats.server.url, { streamName: 'WPCLI', subjectPrefix: 'pw', duplicateWindowMs: 120_000, logger });
  repo = new NodeRepository(store);
  sim = await startSimulator(0);
  sshd = await fakeSshd();
  pharServer = createServer((req, res) => {
    if (req.url === '/wp-cli.phar') res.end(STAND_IN);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => pharServer.listen(0, '127.0.0.1', r));
  const addr = pharServer.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(async () => {
  await new Promise((r) => pharServer.close(r));
  await sshd.close();
  await sim.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
  await deps.cleanup();
});

describe('the saga and the WP-CLI phar', () => {
  it('fails the job with WP_CLI_UNAVAILABLE before any provider call when the phar cannot be had: no key, no server', async () => {
    const s = await runSaga('saga-no-phar', '/missing.phar', 'wpcli-missing');
    expect(s.jobs['wpcli-missing-job']).toMatchObject({ status: 'failed', attempt: 1, errorCode: 'WP_CLI_UNAVAILABLE' });
    expect(await eventTypes(repo, 'wpcli-missing')).toEqual(['ProvisionRequested', 'JobStarted', 'ProvisionFailed']);
    const snapshot = sim.admin.snapshot();
    expect(snapshot.servers).toHaveLength(0);
    expect(snapshot.sshKeys).toHaveLength(0);
  });

  it('hands the verified phar to Ansible when it matches the pin', async () => {
    const s = await runSaga('saga-phar', '/wp-cli.phar', 'wpcli-ok');
    expect(s.jobs['wpcli-ok-job']).toMatchObject({ status: 'succeeded', errorCode: null });
    expect(sim.admin.snapshot().servers).toHaveLength(1);
  });
});
