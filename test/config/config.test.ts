import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

describe('config', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c.nats.url).toBeUndefined();
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(c.policy).toEqual({ maxAttempts: 3, backoffMs: [60_000, 300_000, 900_000], jobTimeoutMs: 1_800_000, ansibleTimeoutMs: 1_800_000, actionTimeoutMs: 900_000 });
    expect(c.dataDir).toMatch(/\.pressluft$/);
  });

  it('reads the documented variables', () => {
    const c = loadConfig({ PRESSLUFT_PORT: '9090', NATS_URL: 'nats://127.0.0.1:4333', PRESSLUFT_BACKOFF_MS: '10,20', HCLOUD_ENDPOINT: 'http://127.0.0.1:9999/v1', PRESSLUFT_ALLOW_TEST_DISTRO: '1' });
    expect(c.http.port).toBe(9090);
    expect(c.nats.url).toBe('nats://127.0.0.1:4333');
    expect(c.policy.backoffMs).toEqual([10, 20]);
    expect(c.hetzner.endpoint).toBe('http://127.0.0.1:9999/v1');
    expect(c.ansible.allowTestDistro).toBe(true);
  });

  it('requires an explicit HCLOUD_ENDPOINT with HCLOUD_TOKEN: no default leaves loopback', () => {
    expect(() => loadConfig({ HCLOUD_TOKEN: 'x' })).toThrow(/HCLOUD_ENDPOINT: must be set when HCLOUD_TOKEN is set/);
    expect(loadConfig({ HCLOUD_TOKEN: 'x', HCLOUD_ENDPOINT: 'https://api.hetzner.cloud/v1' }).hetzner.endpoint).toBe('https://api.hetzner.cloud/v1');
  });

  it('reads HCLOUD_TOKEN and HCLOUD_ENDPOINT as Hetzner’s CLI does, and bounds each request by HCLOUD_TIMEOUT_MS', () => {
    const token = 'tok-0123456789abcdef';
    expect(loadConfig({ HCLOUD_TOKEN: token, HCLOUD_ENDPOINT: 'http://127.0.0.1:4010/v1' }).hetzner).toEqual({
      token, endpoint: 'http://127.0.0.1:4010/v1', timeoutMs: 30_000,
    });
    expect(loadConfig({ HCLOUD_TIMEOUT_MS: '2500' }).hetzner.timeoutMs).toBe(2500);
  });

  it('refuses a non-http(s) HCLOUD_ENDPOINT without echoing the token', () => {
    const token = 'tok-0123456789abcdef';
    const e = (() => {
      try {
        loadConfig({ HCLOUD_TOKEN: token, HCLOUD_ENDPOINT: 'ftp://x' });
      } catch (err) {
        return err;
      }
      throw new Error('loadConfig accepted an ftp endpoint');
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toMatchObject({ code: 'CONFIG_INVALID', retryable: false, message: expect.stringMatching(/^invalid configuration: HCLOUD_ENDPOINT:/) });
    expect(JSON.stringify({ m: (e as Error).message, d: (e as ConfigError).details })).not.toContain(token);
  });

  it.each([
    ['PRESSLUFT_PORT', 'eighty'],
    ['PRESSLUFT_PORT', '70000'],
    ['NATS_URL', 'http://x'],
    ['PRESSLUFT_BACKOFF_MS', '1m,5m'],
    ['PRESSLUFT_LOG_LEVEL', 'loud'],
    ['PRESSLUFT_API_TOKEN', 'short'],
    ['PRESSLUFT_SECRET_KEY', 'nothex'],
    ['PRESSLUFT_MAX_ATTEMPTS', '0'],
    ['HCLOUD_TIMEOUT_MS', '50'],
    ['HCLOUD_TIMEOUT_MS', 'soon'],
  ])('stops start-up on a bad %s and names the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name}:`));
  });
});

describe('workers on a shared NATS', () => {
  it('refuses a worker without PRESSLUFT_SECRET_KEY, naming the variable', () => {
    expect(() => loadConfig({ PRESSLUFT_ROLE: 'worker', NATS_URL: 'nats://127.0.0.1:4222', NATS_USER: 'u', NATS_PASSWORD: 'p' })).toThrow(/PRESSLUFT_SECRET_KEY/);
    expect(() => loadConfig({ PRESSLUFT_ROLE: 'worker', NATS_URL: 'nats://127.0.0.1:4222', NATS_USER: 'u', NATS_PASSWORD: 'p', PRESSLUFT_SECRET_KEY: 'a'.repeat(64) })).not.toThrow();
  });
});
