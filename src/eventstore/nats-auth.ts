import { readFileSync } from 'node:fs';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';

/** How a process authenticates to NATS. The embedded server's app user is a `user`. */
export type NatsAuth = { kind: 'none' } | { kind: 'creds'; file: string } | { kind: 'user'; user: string; password: string } | { kind: 'token'; token: string };

/**
 * Connection options for `EventStore.open`: the server list plus exactly one auth method.
 * Secrets go into the options object only, never into a URL, so no log line or file that
 * shows a URL can carry one.
 */
export const natsConnectionOptions = (servers: string, auth: NatsAuth): NodeConnectionOptions => {
  const list = servers.split(',').map((s) => s.trim()).filter(Boolean);
  switch (auth.kind) {
    case 'none':
      return { servers: list };
    case 'creds':
      // Read at every (re)connect, so a rotated creds file is picked up without a restart.
      return { servers: list, authenticator: credsAuthenticator(() => readFileSync(auth.file)) };
    case 'user':
      return { servers: list, user: auth.user, pass: auth.password };
    case 'token':
      return { servers: list, token: auth.token };
  }
};
