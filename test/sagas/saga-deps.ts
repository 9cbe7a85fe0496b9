import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { playbookBundle } from '../../src/ansible/playbook-bundle.ts';
import { openHostKeyStore, type HostKeyStore } from '../../src/ssh-keys/host-key-store.ts';

/** The saga deps every test worker needs beyond its ports: a host-key store on a temp data dir, and the real playbook bundle. */
export const sagaTestDeps = async (secret = 'c'.repeat(64)): Promise<{ dataDir: string; hostKeys: HostKeyStore; playbookBundle: { digest: string; version: string }; cleanup(): Promise<void> }> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pressluft-saga-'));
  return {
    dataDir,
    hostKeys: await openHostKeyStore({ dataDir, encryptionKey: secret }),
    playbookBundle: await playbookBundle('ansible'),
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  };
};
