import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUT_MS, hetznerConfigFromEnv } from '../../src/providers/hetzner/hetzner-config.ts';
import { rejectionOf } from './simulator-fixture.ts';

const TOKEN = 'tok-0123456789abcdef';

describe('hetznerConfigFromEnv', () => {
  it('reads HCLOUD_TOKEN and HCLOUD_ENDPOINT as Hetzner’s CLI does', () => {
    expect(hetznerConfigFromEnv({ HCLOUD_TOKEN: TOKEN, HCLOUD_ENDPOINT: 'http://127.0.0.1:4010/v1' })).toEqual({
      token: TOKEN, endpoint: 'http://127.0.0.1:4010/v1', timeoutMs: DEFAULT_TIMEOUT_MS,
    });
    expect(hetznerConfigFromEnv({ HCLOUD_TOKEN: TOKEN, HCLOUD_ENDPOINT: 'http://127.0.0.1:1/v1', HCLOUD_TIMEOUT_MS: '2500' }).timeoutMs).toBe(2500);
  });

  it('has no default endpoint, so nothing reaches beyond loopback unless configured', async () => {
    const e = await rejectionOf(Promise.resolve().then(() => hetznerConfigFromEnv({ HCLOUD_TOKEN: TOKEN })));
    expect(e).toMatchObject({ code: 'PROVIDER_CONFIG_INVALID', retryable: false, message: expect.stringContaining('HCLOUD_ENDPOINT') });
  });

  it('rejects a missing token and a non-http endpoint without echoing the token', async () => {
    expect(() => hetznerConfigFromEnv({ HCLOUD_ENDPOINT: 'http://127.0.0.1:4010/v1' })).toThrow(/HCLOUD_TOKEN/);
    const e = await rejectionOf(Promise.resolve().then(() => hetznerConfigFromEnv({ HCLOUD_TOKEN: TOKEN, HCLOUD_ENDPOINT: 'ftp://x' })));
    expect(e).toMatchObject({ code: 'PROVIDER_CONFIG_INVALID' });
    expect(JSON.stringify({ m: (e as Error).message, d: (e as { details?: unknown }).details })).not.toContain(TOKEN);
  });
});
