import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import type { NatsAuth } from '../eventstore/nats-auth.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const msList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of milliseconds, e.g. 60000,300000,900000')
  .transform((s) => s.split(',').map(Number));
const bool = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');
const optional = (s: z.ZodType<string>) => z.preprocess((v) => (v === '' ? undefined : v), s.optional());

type NatsAuthEnv = { NATS_URL?: string; NATS_CREDS?: string; NATS_USER?: string; NATS_PASSWORD?: string; NATS_TOKEN?: string };

/** External NATS auth: at most one method, user and password together, and only with NATS_URL (the embedded server makes its own users). */
const natsAuthRules = (e: NatsAuthEnv, ctx: z.RefinementCtx): void => {
  const methods = (['NATS_CREDS', 'NATS_USER', 'NATS_TOKEN'] as const).filter((k) => e[k] !== undefined);
  for (const k of methods.slice(1)) ctx.addIssue({ code: 'custom', path: [k], message: `only one NATS auth method may be set (also set: ${methods[0]})` });
  if (e.NATS_CREDS !== undefined && !existsSync(e.NATS_CREDS)) ctx.addIssue({ code: 'custom', path: ['NATS_CREDS'], message: 'names no readable file' });
  if ((e.NATS_USER === undefined) !== (e.NATS_PASSWORD === undefined)) {
    ctx.addIssue({ code: 'custom', path: [e.NATS_USER === undefined ? 'NATS_USER' : 'NATS_PASSWORD'], message: 'NATS_USER and NATS_PASSWORD go together' });
  }
  if (!e.NATS_URL) {
    for (const k of [...methods, ...(e.NATS_PASSWORD !== undefined && !methods.includes('NATS_USER') ? ['NATS_PASSWORD' as const] : [])]) {
      ctx.addIssue({ code: 'custom', path: [k], message: 'applies to an external NATS only: set NATS_URL, or unset it for the embedded server' });
    }
  }
};

const natsAuthOf = (e: NatsAuthEnv): NatsAuth =>
  e.NATS_CREDS ? { kind: 'creds', file: resolve(e.NATS_CREDS) } : e.NATS_USER && e.NATS_PASSWORD ? { kind: 'user', user: e.NATS_USER, password: e.NATS_PASSWORD } : e.NATS_TOKEN ? { kind: 'token', token: e.NATS_TOKEN } : { kind: 'none' };

/** 127.0.0.0/8, ::1 or localhost: traffic that never leaves this machine. */
export const isLoopbackHost = (host: string): boolean => {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
};

type ListenEnv = { PRESSLUFT_HOST: string; PRESSLUFT_TLS_CERT?: string; PRESSLUFT_TLS_KEY?: string; PRESSLUFT_ALLOW_PLAINTEXT: boolean; HCLOUD_ENDPOINT?: string };

/** Plaintext (the API token, provider tokens) only where no network peer can read it (issue 9.8). */
const transportRules = (e: ListenEnv, ctx: z.RefinementCtx): void => {
  if (e.HCLOUD_ENDPOINT && URL.canParse(e.HCLOUD_ENDPOINT) && new URL(e.HCLOUD_ENDPOINT).protocol !== 'https:' && !isLoopbackHost(new URL(e.HCLOUD_ENDPOINT).hostname)) {
    ctx.addIssue({ code: 'custom', path: ['HCLOUD_ENDPOINT'], message: 'must be https:// unless it is a loopback address (the token would cross the network in plaintext)' });
  }
  if ((e.PRESSLUFT_TLS_CERT === undefined) !== (e.PRESSLUFT_TLS_KEY === undefined)) {
    ctx.addIssue({ code: 'custom', path: [e.PRESSLUFT_TLS_CERT === undefined ? 'PRESSLUFT_TLS_CERT' : 'PRESSLUFT_TLS_KEY'], message: 'PRESSLUFT_TLS_CERT and PRESSLUFT_TLS_KEY go together' });
  }
  for (const k of ['PRESSLUFT_TLS_CERT', 'PRESSLUFT_TLS_KEY'] as const) {
    if (e[k] !== undefined && !existsSync(e[k])) ctx.addIssue({ code: 'custom', path: [k], message: 'names no readable file' });
  }
  if (!isLoopbackHost(e.PRESSLUFT_HOST) && e.PRESSLUFT_TLS_CERT === undefined && !e.PRESSLUFT_ALLOW_PLAINTEXT) {
    ctx.addIssue({
      code: 'custom',
      path: ['PRESSLUFT_HOST'],
      message: 'listening beyond loopback needs TLS (PRESSLUFT_TLS_CERT and PRESSLUFT_TLS_KEY) or PRESSLUFT_ALLOW_PLAINTEXT=1 (e.g. behind a TLS-terminating proxy)',
    });
  }
};

/**
 * Every setting, from the environment, validated once at start-up. Names are part of the
 * product (README configuration table); defaults run the whole control plane on one machine.
 */
const envSchema = z.object({
  PRESSLUFT_DATA_DIR: z.string().min(1).default('./.pressluft'),
  PRESSLUFT_HOST: z.string().min(1).default('127.0.0.1'),
  PRESSLUFT_PORT: int(0, 65535).default(8080),
  PRESSLUFT_API_TOKEN: optional(z.string().min(16, 'must be at least 16 characters')),
  // PEM files; both or neither. Required to listen beyond loopback unless PRESSLUFT_ALLOW_PLAINTEXT=1.
  PRESSLUFT_TLS_CERT: optional(z.string().min(1)),
  PRESSLUFT_TLS_KEY: optional(z.string().min(1)),
  PRESSLUFT_ALLOW_PLAINTEXT: bool.default(false),
  PRESSLUFT_MAX_CONNECTIONS: int(1, 65_535).default(512),
  PRESSLUFT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // One URL or a comma-separated server list (a cluster).
  NATS_URL: optional(z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s,]+(,(nats|tls|ws|wss):\/\/[^\s,]+)*$/, 'must be a nats:// URL or a comma-separated list of them')),
  // External NATS auth: exactly one method (refined below). Never logged.
  NATS_CREDS: optional(z.string().min(1)),
  NATS_USER: optional(z.string().min(1)),
  NATS_PASSWORD: optional(z.string().min(1)),
  NATS_TOKEN: optional(z.string().min(1)),
  PRESSLUFT_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/).default('PRESSLUFT_EVENTS'),
  PRESSLUFT_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('pressluft'),
  PRESSLUFT_DUPLICATE_WINDOW_MS: int(1000).default(600_000),
  // The stream's and the durable consumers' replicas: 1 (one server) or 3 (a NATS cluster, nats-server >= 2.10).
  PRESSLUFT_STREAM_REPLICAS: z.enum(['1', '3'], { error: 'must be 1 (one nats-server) or 3 (a NATS cluster)' }).default('1').transform(Number),
  HCLOUD_TOKEN: optional(z.string().min(1)),
  HCLOUD_ENDPOINT: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
  HCLOUD_TIMEOUT_MS: int(100, 600_000).default(30_000),
  PRESSLUFT_SECRET_KEY: optional(z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)')),
  PRESSLUFT_MAX_ATTEMPTS: int(1, 10).default(3),
  PRESSLUFT_BACKOFF_MS: msList.default([60_000, 300_000, 900_000]),
  PRESSLUFT_JOB_TIMEOUT_MS: int(1).default(1_800_000),
  PRESSLUFT_ANSIBLE_TIMEOUT_MS: int(1).default(1_800_000),
  PRESSLUFT_ACTION_TIMEOUT_MS: int(1).default(900_000),
  PRESSLUFT_ACK_WAIT_MS: int(1000).default(30_000),
  PRESSLUFT_MAX_DELIVER: int(2).default(500),
  PRESSLUFT_WORKER_CONCURRENCY: int(1, 1000).default(32),
  PRESSLUFT_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  PRESSLUFT_PLAYBOOK: z.string().min(1).default('ansible/playbooks/node-provision.yml'),
  PRESSLUFT_ALLOW_TEST_DISTRO: bool.default(false),
  PRESSLUFT_WP_CLI_PHAR: optional(z.string().min(1)),
  PRESSLUFT_WP_CLI_SHA256: optional(z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase sha256 hex digest')),
  // Where the pinned WP-CLI release is fetched from (src/wp-cli/wp-cli-release.ts); set only to test against a loopback server.
  PRESSLUFT_WP_CLI_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
})
  // No default may reach beyond loopback: a real Hetzner endpoint must be named explicitly (ADR 0002).
  .refine((e) => !e.HCLOUD_TOKEN || e.HCLOUD_ENDPOINT, {
    path: ['HCLOUD_ENDPOINT'],
    message: 'must be set when HCLOUD_TOKEN is set (for Hetzner Cloud: https://api.hetzner.cloud/v1)',
  })
  .superRefine(natsAuthRules)
  // The embedded server is one server: three replicas need a cluster of at least three.
  .refine((e) => e.PRESSLUFT_STREAM_REPLICAS === 1 || e.NATS_URL, {
    path: ['PRESSLUFT_STREAM_REPLICAS'],
    message: '3 needs a NATS cluster: set NATS_URL to its servers (the embedded nats-server is a single server)',
  })
  .superRefine(transportRules)
  // Workers on a shared NATS derive each node's host key from this secret (ADR 0014): a worker with a key file of its own would send other keys.
  .refine((e) => !(e.PRESSLUFT_ROLE === 'worker' && e.NATS_URL) || e.PRESSLUFT_SECRET_KEY, {
    path: ['PRESSLUFT_SECRET_KEY'],
    message: 'must be set for PRESSLUFT_ROLE=worker with NATS_URL: every worker needs the same secret to derive the nodes\' host keys',
  })
  // One without the other would be ignored silently, and the pinned release installed instead.
  .refine((e) => (e.PRESSLUFT_WP_CLI_PHAR === undefined) === (e.PRESSLUFT_WP_CLI_SHA256 === undefined), {
    path: ['PRESSLUFT_WP_CLI_SHA256'],
    message: 'PRESSLUFT_WP_CLI_PHAR and PRESSLUFT_WP_CLI_SHA256 go together',
  });

export type Env = z.infer<typeof envSchema>;

export interface Config {
  dataDir: string;
  http: { host: string; port: number; apiToken: string | undefined; tls: { certFile: string; keyFile: string } | undefined; maxConnections: number };
  logLevel: Env['PRESSLUFT_LOG_LEVEL'];
  nats: { url: string | undefined; auth: NatsAuth; stream: string; subjectPrefix: string; duplicateWindowMs: number; replicas: number };
  /** timeoutMs bounds each Hetzner API request, body included. */
  hetzner: { token: string | undefined; endpoint: string | undefined; timeoutMs: number };
  secretKeyHex: string | undefined;
  policy: { maxAttempts: number; backoffMs: number[]; jobTimeoutMs: number; ansibleTimeoutMs: number; actionTimeoutMs: number };
  saga: { ackWaitMs: number; maxDeliver: number; concurrency: number };
  role: Env['PRESSLUFT_ROLE'];
  ansible: { playbook: string; allowTestDistro: boolean; wpCliPhar: string | undefined; wpCliSha256: string | undefined; wpCliUrl: string | undefined };
}

export class ConfigError extends AppError {
  constructor(message: string, details: Record<string, unknown>) {
    super('CONFIG_INVALID', message, false, details);
  }
}

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`, { variables: parsed.error.issues.map((i) => i.path.join('.')) });
  }
  const e = parsed.data;
  return {
    dataDir: resolve(e.PRESSLUFT_DATA_DIR),
    http: {
      host: e.PRESSLUFT_HOST,
      port: e.PRESSLUFT_PORT,
      apiToken: e.PRESSLUFT_API_TOKEN,
      tls: e.PRESSLUFT_TLS_CERT && e.PRESSLUFT_TLS_KEY ? { certFile: resolve(e.PRESSLUFT_TLS_CERT), keyFile: resolve(e.PRESSLUFT_TLS_KEY) } : undefined,
      maxConnections: e.PRESSLUFT_MAX_CONNECTIONS,
    },
    logLevel: e.PRESSLUFT_LOG_LEVEL,
    nats: { url: e.NATS_URL, auth: natsAuthOf(e), stream: e.PRESSLUFT_STREAM, subjectPrefix: e.PRESSLUFT_SUBJECT_PREFIX, duplicateWindowMs: e.PRESSLUFT_DUPLICATE_WINDOW_MS, replicas: e.PRESSLUFT_STREAM_REPLICAS },
    hetzner: { token: e.HCLOUD_TOKEN, endpoint: e.HCLOUD_ENDPOINT, timeoutMs: e.HCLOUD_TIMEOUT_MS },
    secretKeyHex: e.PRESSLUFT_SECRET_KEY,
    policy: {
      maxAttempts: e.PRESSLUFT_MAX_ATTEMPTS,
      backoffMs: e.PRESSLUFT_BACKOFF_MS,
      jobTimeoutMs: e.PRESSLUFT_JOB_TIMEOUT_MS,
      ansibleTimeoutMs: e.PRESSLUFT_ANSIBLE_TIMEOUT_MS,
      actionTimeoutMs: e.PRESSLUFT_ACTION_TIMEOUT_MS,
    },
    saga: { ackWaitMs: e.PRESSLUFT_ACK_WAIT_MS, maxDeliver: e.PRESSLUFT_MAX_DELIVER, concurrency: e.PRESSLUFT_WORKER_CONCURRENCY },
    role: e.PRESSLUFT_ROLE,
    ansible: { playbook: e.PRESSLUFT_PLAYBOOK, allowTestDistro: e.PRESSLUFT_ALLOW_TEST_DISTRO, wpCliPhar: e.PRESSLUFT_WP_CLI_PHAR, wpCliSha256: e.PRESSLUFT_WP_CLI_SHA256, wpCliUrl: e.PRESSLUFT_WP_CLI_URL },
  };
};
