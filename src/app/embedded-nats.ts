import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { AppError } from '../errors/app-error.ts';
import { natsConnectionOptions } from '../eventstore/nats-auth.ts';
import { loadOrCreateNatsCredentials, readNatsCredentials } from '../eventstore/nats-credentials.ts';
import { freeLoopbackPort, startNatsServer, type NatsProcess } from '../eventstore/nats-process.ts';
import type { Logger } from '../logging/logger.ts';

/**
 * The embedded nats-server's files in the data dir:
 * - `nats-credentials.json` (0600): the app and operator users; never logged, never in argv;
 * - `nats/nats-server.conf` (0600), `nats/nats-server.pid`, `nats/nats-server.lock`, `nats/jetstream/`;
 * - `nats-url`: the server's URL only, no secret, for workers and operators on this machine.
 */
export const embeddedNatsFiles = (dataDir: string) => ({
  credentials: join(dataDir, 'nats-credentials.json'),
  storeDir: join(dataDir, 'nats'),
  url: join(dataDir, 'nats-url'),
});

export class EmbeddedNatsDied extends AppError {
  constructor(code: number | null, signal: string | null) {
    super('NATS_SERVER_EXITED', `the embedded nats-server exited (code ${code}, signal ${signal}); stopping so the service manager restarts pressluft (ADR 0030)`, false, { code, signal });
  }
}

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

/** The port of the last run when it is free again: attached workers reconnect to the same URL after a restart. */
const stablePort = async (urlFile: string): Promise<number> => {
  const previous = Number(/:(\d+)\s*$/.exec((await readFile(urlFile, 'utf8').catch(() => '')) ?? '')?.[1] ?? 0);
  return previous > 0 && (await portIsFree(previous)) ? previous : freeLoopbackPort();
};

export interface EmbeddedNats {
  process: NatsProcess;
  target: NodeConnectionOptions;
  stop(): Promise<void>;
}

/** Starts the embedded server with generated credentials; `onDied` fires when it exits unasked. */
export const startEmbeddedNats = async (o: { dataDir: string; subjectPrefix: string; logger: Logger; onDied: (e: EmbeddedNatsDied) => void }): Promise<EmbeddedNats> => {
  const files = embeddedNatsFiles(o.dataDir);
  const credentials = await loadOrCreateNatsCredentials(files.credentials);
  const log = o.logger.child({ component: 'nats-server' });
  const proc = await startNatsServer({
    storeDir: files.storeDir,
    port: await stablePort(files.url),
    credentials,
    subjectPrefix: o.subjectPrefix,
    // Its own banner is noise at info; warnings and errors are what an operator needs.
    onLog: (level, line) => log[level === 'info' ? 'debug' : level](line),
    onUnexpectedExit: (code, signal) => {
      const e = new EmbeddedNatsDied(code, signal);
      log.fatal({ errorCode: e.code, exitCode: code, signal }, e.message);
      o.onDied(e);
    },
  });
  await writeFile(files.url, `${proc.url}\n`, { mode: 0o600 });
  o.logger.info({ natsUrl: proc.url, storeDir: proc.storeDir, pid: proc.pid }, 'started embedded nats-server (set NATS_URL to use your own)');
  return {
    process: proc,
    target: natsConnectionOptions(proc.url, { kind: 'user', ...credentials.app }),
    stop: async () => {
      await proc.stop();
      await rm(files.url, { force: true });
    },
  };
};

/** A worker on the same machine and data dir joins the running embedded server with the app user. */
export const embeddedNatsTarget = async (dataDir: string): Promise<NodeConnectionOptions | null> => {
  const files = embeddedNatsFiles(dataDir);
  const url = (await readFile(files.url, 'utf8').catch(() => null))?.trim();
  if (!url) return null;
  const { app } = await readNatsCredentials(files.credentials);
  return natsConnectionOptions(url, { kind: 'user', ...app });
};
