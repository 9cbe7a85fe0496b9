import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sshKeyListSchema } from '../../src/providers/hetzner/hetzner-schemas.ts';
import { RATE_LIMIT_RETRIES } from '../../src/providers/hetzner/hetzner-client.ts';
import { startHetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { loadOrCreateSshKeyPair } from '../../src/ssh-keys/key-pair-store.ts';
import { captureLogger, providerFor, specFor, waitForActions } from './simulator-fixture.ts';

const TOKEN = 'hcloud-secret-token-7f3a9c1e5b2d4f6a8c0e';
const WRONG_TOKEN = 'hcloud-wrong-token-0b1c2d3e4f5a6b7c8d9e';

/** Everything an error can carry into a log line or an event. */
const dump = (e: unknown): string =>
  e instanceof Error ? [e.message, e.stack, JSON.stringify(e), JSON.stringify((e as { details?: unknown }).details), String(e.cause)].join('\n') : String(e);

describe('no secret leaves the provider', () => {
  it('keeps the token and the private key out of logs and errors across successes and every kind of failure', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pressluft-nosecret-'));
    const sim = await startHetznerSimulator({ token: TOKEN, actionDurationMs: 0 });
    const { logger, text } = captureLogger();
    const errors: unknown[] = [];
    const attempt = async (p: Promise<unknown>) => p.catch((e: unknown) => { errors.push(e); });
    try {
      const pair = await loadOrCreateSshKeyPair({ dataDir });
      const p = providerFor(sim, logger);
      const { keyId } = await p.ensureSshKey(pair.publicKey);
      const created = await p.createServer(specFor('n1', keyId));
      await waitForActions(p, created.actionIds, 10_000);

      await attempt(providerFor(sim, logger, { token: WRONG_TOKEN }).findServer('n1', 'node-n1'));
      sim.admin.injectFault({ operation: 'create_server', applyFirst: true, effect: { type: 'drop' } });
      await attempt(p.createServer(specFor('n2', keyId)));
      sim.admin.injectFault({ operation: 'list_servers', effect: { type: 'delay', ms: 3_000 } });
      await attempt(providerFor(sim, logger, { timeoutMs: 300 }).findServer('n3', 'node-n3'));
      // The client sends a refused POST again itself (bounded): refuse every try so the 429 reaches us.
      sim.admin.injectFault({ operation: 'create_server', count: RATE_LIMIT_RETRIES + 1, effect: { type: 'error', status: 429, code: 'rate_limit_exceeded' } });
      await attempt(p.createServer(specFor('n4', keyId)));
      await attempt(p.client.createServer({ name: 'taken', server_type: 'cx22', image: 'debian-12', labels: {} }));
      await attempt(p.createServer(specFor('n5', keyId, { name: 'taken' })));
      await attempt(p.client.request('GET', '/servers', sshKeyListSchema));
      await attempt(p.getServer('987654'));
      sim.admin.failNextActions(1);
      const failing = await p.createServer(specFor('n6', keyId));
      await attempt(waitForActions(p, failing.actionIds, 2_000));
      // What careless callers might do: log the errors and the key pair itself.
      for (const e of errors) logger.error({ err: e }, 'provider call failed');
      logger.info({ keyPair: pair, token: TOKEN }, 'key pair loaded');

      expect(errors.map((e) => (e as { code: string }).code).sort()).toEqual([
        'PROVIDER_ACTION_FAILED', 'PROVIDER_AUTH_FAILED', 'PROVIDER_BAD_RESPONSE', 'PROVIDER_RATE_LIMITED',
        'PROVIDER_SERVER_NAME_CONFLICT', 'PROVIDER_SERVER_NOT_FOUND', 'PROVIDER_UNAVAILABLE', 'PROVIDER_UNAVAILABLE',
      ]);
      const logs = text();
      // The scan is only meaningful if the requests were logged, with their correlation ids.
      expect(logs.match(/"msg":"hetzner request"/g)?.length).toBeGreaterThan(10);
      expect(logs).toMatch(/"correlationId":"[0-9a-f]{16}"/);

      const privateLines = pair.privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
      const haystack = [logs, ...errors.map(dump)].join('\n');
      for (const secret of [TOKEN, WRONG_TOKEN, ...privateLines]) expect(haystack).not.toContain(secret);
      expect(haystack).not.toContain('OPENSSH PRIVATE KEY');
    } finally {
      await sim.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
