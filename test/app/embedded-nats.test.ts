import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../../src/app/control-plane.ts';
import { embeddedNatsFiles } from '../../src/app/embedded-nats.ts';
import { loadConfig } from '../../src/config/config.ts';
import { serversUsingConfig } from '../../src/eventstore/nats-stale-server.ts';
import { captureLogger } from '../support/silent-logger.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the embedded nats-server of a data dir', () => {
  it('writes no secret to nats-url, and a worker on the same data dir joins it instead of starting a second one', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-embedded-'));
    dirs.push(dir);
    const { logger, lines } = captureLogger('debug');
    const owner = await startControlPlane(loadConfig({ PRESSLUFT_DATA_DIR: dir, PRESSLUFT_PORT: '0', PRESSLUFT_ROLE: 'api' }), { logger });
    try {
      const files = embeddedNatsFiles(dir);
      const creds = JSON.parse(await readFile(files.credentials, 'utf8')) as { app: { password: string }; operator: { password: string } };
      expect((await readFile(files.url, 'utf8')).trim()).toBe(owner.nats!.url);
      expect((await stat(files.credentials)).mode & 0o777).toBe(0o600);

      const worker = await startControlPlane(loadConfig({ PRESSLUFT_DATA_DIR: dir, PRESSLUFT_ROLE: 'worker' }), { logger });
      try {
        expect(worker.nats).toBeNull();
        expect(await serversUsingConfig(owner.nats!.configFile)).toEqual([owner.nats!.pid]);
        expect(await worker.store.lastPosition()).toBe(await owner.store.lastPosition());
      } finally {
        await worker.stop();
      }
      // Debug logging included: no password in any log line.
      expect(lines.filter((l) => l.includes(creds.app.password) || l.includes(creds.operator.password))).toEqual([]);
    } finally {
      await owner.stop();
    }
    expect(await serversUsingConfig(join(dir, 'nats', 'nats-server.conf'))).toEqual([]);
  });
});
