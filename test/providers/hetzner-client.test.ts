import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { RATE_LIMIT_RETRIES } from '../../src/providers/hetzner/hetzner-client.ts';
import { HetznerApiError } from '../../src/providers/hetzner/hetzner-error.ts';
import { sshKeyListSchema } from '../../src/providers/hetzner/hetzner-schemas.ts';
import { startHetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { captureLogger, drainRateLimit, providerFor, rejectionOf, useSimulator } from './simulator-fixture.ts';

const sim = useSimulator();
const client = (opts: { token?: string; timeoutMs?: number } = {}) => providerFor(sim(), captureLogger().logger, opts).client;

const newKey = () => generateOpenSshEd25519('test').publicKey;

const createServer = async (name = 'web-1') => {
  const key = await client().createSshKey({ name: `k-${name}`, public_key: newKey() });
  return client().createServer({ name, server_type: 'cx22', image: 'debian-12', location: 'fsn1', ssh_keys: [key.id] });
};

const expectApiError = (e: unknown, expected: Partial<HetznerApiError>) => {
  expect(e).toBeInstanceOf(HetznerApiError);
  expect(e).toMatchObject(expected);
};

describe('HetznerClient error classes against the simulator', () => {
  it('401 on a wrong token → PROVIDER_AUTH_FAILED, terminal, with status, code and correlation id', async () => {
    const e = await rejectionOf(client({ token: 'wrong-token' }).listServers({}));
    expectApiError(e, { code: 'PROVIDER_AUTH_FAILED', retryable: false, httpStatus: 401, apiCode: 'unauthorized' });
    expect((e as HetznerApiError).correlationId).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    [403, 'forbidden', 'PROVIDER_AUTH_FAILED', false],
    [403, 'token_readonly', 'PROVIDER_AUTH_FAILED', false],
    [403, 'resource_limit_exceeded', 'PROVIDER_QUOTA_EXCEEDED', false],
    [403, 'maintenance', 'PROVIDER_UNAVAILABLE', true],
    [409, 'conflict', 'PROVIDER_LOCKED', true],
    [412, 'resource_unavailable', 'PROVIDER_RESOURCE_UNAVAILABLE', true],
    [422, 'placement_error', 'PROVIDER_INVALID_REQUEST', false],
    [500, 'server_error', 'PROVIDER_UNAVAILABLE', true],
    [502, 'bad_gateway', 'PROVIDER_UNAVAILABLE', true],
    [503, 'unavailable', 'PROVIDER_UNAVAILABLE', true],
    [504, 'timeout', 'PROVIDER_UNAVAILABLE', true],
  ] as const)('%i %s → %s (retryable %s), with Hetzner details', async (status, apiCode, code, retryable) => {
    sim().admin.injectFault({ operation: 'list_servers', effect: { type: 'error', status, code: apiCode, message: 'injected', details: { hint: 'x' } } });
    const e = await rejectionOf(client().listServers({}));
    expectApiError(e, { code, retryable, httpStatus: status, apiCode, apiMessage: 'injected', apiDetails: { hint: 'x' } });
    expect((e as HetznerApiError).rateLimit).toMatchObject({ limit: 3600 });
  });

  it('422 invalid_input from real validation → PROVIDER_INVALID_REQUEST with the offending field', async () => {
    const e = await rejectionOf(client().createServer({ name: 'not_a_hostname', server_type: 'cx22', image: 'debian-12' }));
    expectApiError(e, { code: 'PROVIDER_INVALID_REQUEST', httpStatus: 422, apiCode: 'invalid_input', apiDetails: { fields: [{ name: 'name' }] } });
  });

  it('423 locked while an action runs → PROVIDER_LOCKED with a retry-after of a few seconds', async () => {
    sim().admin.setActionDuration(60_000);
    const { server } = await createServer();
    const e = await rejectionOf(client().deleteServer(server.id));
    expectApiError(e, { code: 'PROVIDER_LOCKED', retryable: true, httpStatus: 423, apiCode: 'locked', retryAfterMs: 3_000 });
    expect(sim().admin.snapshot().servers).toHaveLength(1);
  });

  it('a dropped connection → PROVIDER_UNAVAILABLE, retryable, no status, marked uncertain for a POST', async () => {
    sim().admin.injectFault({ operation: 'create_ssh_key', applyFirst: true, effect: { type: 'drop' } });
    const e = await rejectionOf(client().createSshKey({ name: 'k', public_key: newKey() }));
    expectApiError(e, { code: 'PROVIDER_UNAVAILABLE', retryable: true, httpStatus: null, uncertain: true });
    expect(sim().admin.snapshot().sshKeys).toHaveLength(1);
  });

  it('a slow answer → PROVIDER_UNAVAILABLE after the per-request timeout', async () => {
    sim().admin.injectFault({ operation: 'list_servers', effect: { type: 'delay', ms: 5_000 } });
    const started = Date.now();
    const e = await rejectionOf(client({ timeoutMs: 200 }).listServers({}));
    expectApiError(e, { code: 'PROVIDER_UNAVAILABLE', retryable: true, httpStatus: null, uncertain: false });
    expect((e as Error).message).toMatch(/timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('leaves no timeout timer behind once a request has been answered', async () => {
    // Unref'd timers (AbortSignal.timeout's) are not in getActiveResourcesInfo; async hooks see every one.
    const live = new Set<number>();
    const hook = createHook({
      init: (id, type) => void (type === 'Timeout' && live.add(id)),
      destroy: (id) => void live.delete(id),
    }).enable();
    try {
      const c = client({ timeoutMs: 30_000 });
      await c.listServers({});
      await new Promise((r) => setImmediate(r));
      // The connection's and the simulator's own timers.
      const settled = live.size;
      for (let i = 0; i < 50; i++) await c.listServers({});
      await new Promise((r) => setImmediate(r));
      // AbortSignal.timeout kept one timer per request alive for the whole 30 s: 50 more here.
      expect(live.size - settled).toBeLessThan(10);
    } finally {
      hook.disable();
    }
  });

  it('never retries a POST at the HTTP layer, even when the error is retryable', async () => {
    sim().admin.injectFault({ operation: 'create_server', count: 3, effect: { type: 'error', status: 503, code: 'unavailable' } });
    const key = await client().createSshKey({ name: 'k', public_key: newKey() });
    await expect(client().createServer({ name: 'web-1', server_type: 'cx22', image: 'debian-12', ssh_keys: [key.id] })).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE', uncertain: true });
    expect(sim().admin.snapshot().counters.calls.create_server).toBe(1);
  });

  it('a response that fails validation → PROVIDER_BAD_RESPONSE, terminal', async () => {
    // /servers answered where /ssh_keys is expected: valid JSON, wrong shape.
    const e = await rejectionOf(client().request('GET', '/servers', sshKeyListSchema));
    expectApiError(e, { code: 'PROVIDER_BAD_RESPONSE', retryable: false, httpStatus: 200 });
  });

  it('follows pagination across pages of at most 50', async () => {
    for (let i = 0; i < 55; i++) await client().createSshKey({ name: `k${i}`, public_key: newKey() });
    const before = sim().admin.snapshot().counters.calls.list_ssh_keys ?? 0;
    const keys = await client().listSshKeys({});
    expect(keys.map((k) => k.name)).toEqual(Array.from({ length: 55 }, (_, i) => `k${i}`));
    expect(sim().admin.snapshot().counters.calls.list_ssh_keys! - before).toBe(2);
  });
});

describe('HetznerClient rate limiting', () => {
  it('a 429 on a GET waits until RateLimit-Reset, then succeeds', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 2, refillPerSecond: 0.5 } });
    try {
      const c = providerFor(limited).client;
      await drainRateLimit(limited);
      const started = Date.now();
      await expect(c.listServers({})).resolves.toEqual([]);
      // Empty bucket, 2 requests at 0.5/s: RateLimit-Reset (bucket full) is ≥ 2 s away.
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
      expect(limited.admin.snapshot().counters.rateLimited).toBe(2);
    } finally {
      await limited.close();
    }
  });

  it('a POST the budget knows would be refused is not sent: PROVIDER_RATE_LIMITED with retryAfterMs until the next token', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 1, refillPerSecond: 0.01 } });
    try {
      const c = providerFor(limited).client;
      await c.listServers({});
      const e = await rejectionOf(c.createSshKey({ name: 'k', public_key: newKey() }));
      expectApiError(e, { code: 'PROVIDER_RATE_LIMITED', retryable: true, httpStatus: null });
      const err = e as HetznerApiError;
      expect(err.rateLimit).toMatchObject({ limit: 1, remaining: 0 });
      // One token at 0.01/s is 100 s away, beyond the 60 s wait bound.
      expect(err.retryAfterMs).toBeGreaterThan(60_000);
      expect(limited.admin.snapshot().counters.calls.create_ssh_key ?? 0).toBe(0);
      expect(limited.admin.snapshot().counters.rateLimited).toBe(0);
    } finally {
      await limited.close();
    }
  });

  it('a POST refused with 429 goes again after the next token, and only once more', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 20, refillPerSecond: 1 } });
    try {
      const c = providerFor(limited).client;
      // The stand-in refuses every 2nd request regardless of the bucket; its 429 says "remaining 0".
      limited.admin.refuseEveryNth(2);
      await c.listServers({});
      await expect(c.createSshKey({ name: 'k', public_key: newKey() })).resolves.toMatchObject({ name: 'k' });
      const counters = limited.admin.snapshot().counters;
      expect(counters.rateLimited).toBe(1);
      expect(counters.calls.create_ssh_key).toBe(1);
    } finally {
      await limited.close();
    }
  });

  it('a 429 that outlasts the retries goes to the caller with retryAfterMs until the next token, not until the bucket is full', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 20, refillPerSecond: 1 } });
    try {
      const c = providerFor(limited).client;
      limited.admin.injectFault({ operation: 'create_ssh_key', count: RATE_LIMIT_RETRIES + 1, effect: { type: 'error', status: 429, code: 'rate_limit_exceeded' } });
      const e = await rejectionOf(c.createSshKey({ name: 'k', public_key: newKey() }));
      expectApiError(e, { code: 'PROVIDER_RATE_LIMITED', retryable: true, httpStatus: 429, apiCode: 'rate_limit_exceeded' });
      const err = e as HetznerApiError;
      expect(err.rateLimit).toMatchObject({ limit: 20 });
      expect(err.retryAfterMs).toBeGreaterThan(0);
      expect(err.retryAfterMs).toBeLessThanOrEqual(2_000);
      expect(limited.admin.snapshot().counters.calls.create_ssh_key).toBe(RATE_LIMIT_RETRIES + 1);
    } finally {
      await limited.close();
    }
  });

  it('a GET whose reset is further away than the wait bound goes to the caller', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 1, refillPerSecond: 0.01 } });
    try {
      const c = providerFor(limited).client;
      await c.listServers({});
      await expect(c.listServers({})).rejects.toMatchObject({ code: 'PROVIDER_RATE_LIMITED' });
    } finally {
      await limited.close();
    }
  });
});
