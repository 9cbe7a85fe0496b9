import { z } from 'zod';
import { ProviderError } from '../provider-port.ts';

/** Where the real API lives. Never a default: see hetznerConfigFromEnv. */
export const HETZNER_PUBLIC_ENDPOINT = 'https://api.hetzner.cloud/v1';
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface HetznerConfig {
  endpoint: string;
  token: string;
  timeoutMs: number;
}

const envSchema = z.object({
  HCLOUD_TOKEN: z.string().trim().min(1, 'HCLOUD_TOKEN is required'),
  HCLOUD_ENDPOINT: z.url({ protocol: /^https?$/, error: 'HCLOUD_ENDPOINT must be an http(s) URL' }),
  HCLOUD_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(DEFAULT_TIMEOUT_MS),
});

/**
 * Reads HCLOUD_TOKEN and HCLOUD_ENDPOINT, the variables Hetzner's CLI reads.
 * Unlike the CLI, HCLOUD_ENDPOINT has no default: nothing in Pressluft may reach beyond loopback
 * unless an operator says so, so real use sets HCLOUD_ENDPOINT=https://api.hetzner.cloud/v1.
 */
export const hetznerConfigFromEnv = (env: Readonly<Record<string, string | undefined>>): HetznerConfig => {
  const parsed = envSchema.safeParse({
    HCLOUD_TOKEN: env.HCLOUD_TOKEN,
    HCLOUD_ENDPOINT: env.HCLOUD_ENDPOINT,
    HCLOUD_TIMEOUT_MS: env.HCLOUD_TIMEOUT_MS,
  });
  if (!parsed.success) {
    // Issue messages only: zod never echoes the token, and we do not pass the input on.
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ProviderError('PROVIDER_CONFIG_INVALID', `invalid Hetzner configuration: ${problems.join('; ')}`, false, { problems });
  }
  return { endpoint: parsed.data.HCLOUD_ENDPOINT, token: parsed.data.HCLOUD_TOKEN, timeoutMs: parsed.data.HCLOUD_TIMEOUT_MS };
};
