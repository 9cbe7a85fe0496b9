import type { NatsCredentials } from './nats-credentials.ts';

/**
 * What the application user may do: its own subjects, the JetStream API calls pressluft makes
 * (stream create/info, consumers, direct get, acks) and reply inboxes. Never stream update
 * (a new limit could make the server discard events: only the operator changes a stream's
 * config), delete or purge, message delete, or publishing advisories: the server publishes
 * `$JS.EVENT.>` itself (the MAX_DELIVERIES capture stream records them server-side), and a
 * forged advisory could fail a running job.
 */
export const appPermissions = (subjectPrefix: string) => ({
  publish: {
    allow: [
      `${subjectPrefix}.>`,
      '$JS.API.INFO',
      '$JS.API.STREAM.CREATE.*',
      '$JS.API.STREAM.INFO.*',
      '$JS.API.STREAM.NAMES',
      '$JS.API.STREAM.LIST',
      '$JS.API.CONSUMER.>',
      '$JS.API.DIRECT.GET.>',
      '$JS.ACK.>',
    ],
    // Redundant with the allow list, kept explicit: these are the operations an attacker wants.
    deny: ['$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.MSG.DELETE.>', '$JS.EVENT.>'],
  },
  subscribe: { allow: ['_INBOX.>', `${subjectPrefix}.>`] },
});

export interface NatsServerConfigInput {
  port: number;
  storeDir: string;
  /** Absent: no authorization block (the test harness's default). */
  credentials?: NatsCredentials;
  subjectPrefix: string;
  /** One server of a loopback cluster (tests and benchmarks): its route port and every route. */
  cluster?: NatsClusterMember;
}

export interface NatsClusterMember {
  /** The cluster's name, the same on every member. */
  name: string;
  /** Unique in the cluster: JetStream needs a server name to place replicas. */
  serverName: string;
  routePort: number;
  /** Route ports to dial; the others are found by gossip. Explicit routes are redialled after a member restarts. */
  routePorts: readonly number[];
}

// The config language takes JSON strings; quoting also keeps `$JS…` from being read as a variable.
const q = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(q).join(', ')}]`;

/** The text of the nats-server config file (`-c`): loopback only, JetStream on, users with permissions. */
export const renderNatsServerConfig = (i: NatsServerConfigInput): string => {
  const lines = [
    '# Written by pressluft at every start of the embedded nats-server. Holds passwords: mode 0600.',
    `listen: ${q(`127.0.0.1:${i.port}`)}`,
    `jetstream { store_dir: ${q(i.storeDir)} }`,
  ];
  if (i.cluster) {
    const c = i.cluster;
    lines.push(
      `server_name: ${q(c.serverName)}`,
      `cluster { name: ${q(c.name)}, listen: ${q(`127.0.0.1:${c.routePort}`)}, routes: ${list(c.routePorts.map((p) => `nats-route://127.0.0.1:${p}`))} }`,
    );
  }
  if (i.credentials) {
    const p = appPermissions(i.subjectPrefix);
    const { app, operator } = i.credentials;
    lines.push(
      'authorization {',
      '  users: [',
      `    { user: ${q(app.user)}, password: ${q(app.password)}, permissions: {`,
      `        publish: { allow: ${list(p.publish.allow)}, deny: ${list(p.publish.deny)} }`,
      `        subscribe: { allow: ${list(p.subscribe.allow)} } } }`,
      `    { user: ${q(operator.user)}, password: ${q(operator.password)} }`,
      '  ]',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
};
