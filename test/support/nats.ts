import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { natsConnectionOptions } from '../../src/eventstore/nats-auth.ts';
import { loadOrCreateNatsCredentials, type NatsCredentials } from '../../src/eventstore/nats-credentials.ts';
import { startNatsServer, type NatsProcess } from '../../src/eventstore/nats-process.ts';

export interface NatsHandle {
  readonly server: NatsProcess;
  readonly dir: string;
  /** Set with `auth: true`: the generated app and operator users. */
  readonly credentials: NatsCredentials | null;
  /** Connection options for one of the generated users (`auth: true` only). */
  as(user: 'app' | 'operator'): NodeConnectionOptions;
}

/**
 * One real nats-server per test file, on a free loopback port with a temp store.
 * Never the machine's shared server on 4222. Without options the server has no authorization
 * (what most suites need); `auth: true` runs it exactly as the embedded server runs, with the
 * generated users and the app user's permissions for `subjectPrefix` (default `pressluft`).
 */
export const useNatsServer = (o: { auth?: boolean; subjectPrefix?: string } = {}): NatsHandle => {
  const handle = {
    server: undefined as unknown as NatsProcess,
    dir: '',
    credentials: null as NatsCredentials | null,
    as(user: 'app' | 'operator'): NodeConnectionOptions {
      if (!handle.credentials) throw new Error('useNatsServer: as() needs { auth: true }');
      return natsConnectionOptions(handle.server.url, { kind: 'user', ...handle.credentials[user] });
    },
  };
  beforeAll(async () => {
    handle.dir = await mkdtemp(join(tmpdir(), 'pressluft-nats-'));
    handle.credentials = o.auth ? await loadOrCreateNatsCredentials(join(handle.dir, 'nats-credentials.json')) : null;
    handle.server = await startNatsServer({ storeDir: join(handle.dir, 'js'), credentials: handle.credentials ?? undefined, subjectPrefix: o.subjectPrefix });
  });
  afterAll(async () => {
    await handle.server?.stop();
    if (handle.dir) await rm(handle.dir, { recursive: true, force: true });
  });
  return handle;
};
