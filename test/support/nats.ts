import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsProcess } from '../../src/eventstore/nats-process.ts';

/**
 * One real nats-server per test file, on a free loopback port with a temp store.
 * Never the machine's shared server on 4222.
 */
export const useNatsServer = (): { readonly server: NatsProcess; readonly dir: string } => {
  const handle = { server: undefined as unknown as NatsProcess, dir: '' };
  beforeAll(async () => {
    handle.dir = await mkdtemp(join(tmpdir(), 'pressluft-nats-'));
    handle.server = await startNatsServer({ storeDir: join(handle.dir, 'js') });
  });
  afterAll(async () => {
    await handle.server?.stop();
    if (handle.dir) await rm(handle.dir, { recursive: true, force: true });
  });
  return handle;
};
