import { resolve } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const msList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of milliseconds, e.g. 60000,300000,900000')
  .transform((s) => s.split(',').map(Number));
const bool = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');
const optional = (s: z.ZodType<string>) => z.preprocess((v) => (v === '' ? undefined : v), s.optional());

/**
 * Every setting, from the environment, validated once at start-up. Names are part of the
 * product (README configuration table); defaults run the whole control plane on one machine.
 */
const envSchema = z.object({
  PRESSLUFT_DATA_DIR: z.string().min(1).default('./.pressluft'),
  PRESSLUFT_HOST: z.string().min(1).default('127.0.0.1'),
  PRESSLUFT_PORT: int(0, 65535).default(8080),
  PRESSLUFT_API_TOKEN: optional(z.string().min(16, 'must be at least 16 characters')),
  PRESSLUFT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NATS_URL: optional(z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/, 'must be a nats:// URL')),
  PRESSLUFT_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/).default('PRESSLUFT_EVENTS'),
  PRESSLUFT_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('pressluft'),
  PRESSLUFT_DUPLICATE_WINDOW_MS: int(1000).default(600_000),
  HCLOUD_TOKEN: optional(z.string().min(1)),
  HCLOUD_ENDPOINT: optional(z.string().url()),
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
})
  // No default may reach beyond loopback: a real Hetzner endpoint must be named explicitly (ADR 0002).
  .refine((e) => !e.HCLOUD_TOKEN || e.HCLOUD_ENDPOINT, {
    path: ['HCLOUD_ENDPOINT'],
    message: 'must be set when HCLOUD_TOKEN is set (for Hetzner Cloud: https://api.hetzner.cloud/v1)',
  });

export type Env = z.infer<typeof envSchema>;

export interface Config {
  dataDir: string;
  http: { host: string; port: number; apiToken: string | undefined };
  logLevel: Env['PRESSLUFT_LOG_LEVEL'];
  nats: { url: string | undefined; stream: string; subjectPrefix: string; duplicateWindowMs: number };
  hetzner: { token: string | undefined; endpoint: string | undefined };
  secretKeyHex: string | undefined;
  policy: { maxAttempts: number; backoffMs: number[]; jobTimeoutMs: number; ansibleTimeoutMs: number; actionTimeoutMs: number };
  saga: { ackWaitMs: number; maxDeliver: number; concurrency: number };
  role: Env['PRESSLUFT_ROLE'];
  ansible: { playbook: string; allowTestDistro: boolean; wpCliPhar: string | undefined; wpCliSha256: string | undefined };
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
    http: { host: e.PRESSLUFT_HOST, port: e.PRESSLUFT_PORT, apiToken: e.PRESSLUFT_API_TOKEN },
    logLevel: e.PRESSLUFT_LOG_LEVEL,
    nats: { url: e.NATS_URL, stream: e.PRESSLUFT_STREAM, subjectPrefix: e.PRESSLUFT_SUBJECT_PREFIX, duplicateWindowMs: e.PRESSLUFT_DUPLICATE_WINDOW_MS },
    hetzner: { token: e.HCLOUD_TOKEN, endpoint: e.HCLOUD_ENDPOINT },
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
    ansible: { playbook: e.PRESSLUFT_PLAYBOOK, allowTestDistro: e.PRESSLUFT_ALLOW_TEST_DISTRO, wpCliPhar: e.PRESSLUFT_WP_CLI_PHAR, wpCliSha256: e.PRESSLUFT_WP_CLI_SHA256 },
  };
};
