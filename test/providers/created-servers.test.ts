import { describe, expect, it } from 'vitest';
import { CREATED_SERVERS_BUDGET_BYTES, CreatedServers } from '../../src/providers/hetzner/created-servers.ts';
import type { CreateServerResponse, HetznerAction } from '../../src/providers/hetzner/hetzner-schemas.ts';

const action = (id: number, command: string, status: HetznerAction['status'] = 'running'): HetznerAction => ({
  id, command, status, progress: status === 'success' ? 100 : 0, started: '2026-12-03T00:00:00+00:00', finished: null, error: null, resources: [],
});

/** A create answer shaped like Hetzner's for server `n`: create_server plus a start_server next action. */
const createAnswer = (n: number): CreateServerResponse => ({
  server: {
    id: n, name: `node-${n}-abcdef`, status: 'initializing', created: '2026-12-03T00:00:00+00:00',
    labels: { 'pressluft.io/managed': 'true', 'pressluft.io/node-id': `01JZ${String(n).padStart(22, '0')}` },
    public_net: { ipv4: { ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` }, ipv6: { ip: `2a01:4f8::${n.toString(16)}/64` } },
  },
  action: action(2 * n, 'create_server'),
  next_actions: [action(2 * n + 1, 'start_server')],
  root_password: null,
});

const succeed = (cache: CreatedServers, n: number): void =>
  cache.observe([action(2 * n, 'create_server', 'success'), action(2 * n + 1, 'start_server', 'success')]);

describe('CreatedServers: server details from the create answer', () => {
  it('given 10,000 servers created at once, when all their actions succeed, then each is answered from memory within the default budget', () => {
    const cache = new CreatedServers();
    for (let n = 1; n <= 10_000; n++) cache.remember(createAnswer(n));
    expect(cache.held.entries).toBe(10_000);
    expect(cache.held.bytes).toBeLessThanOrEqual(CREATED_SERVERS_BUDGET_BYTES);
    for (let n = 1; n <= 10_000; n++) succeed(cache, n);
    const answered = Array.from({ length: 10_000 }, (_, i) => cache.running(String(i + 1)));
    expect(answered.every((s) => s?.status === 'running')).toBe(true);
    expect(cache.held).toEqual({ entries: 0, bytes: 0 });
  });

  it('given a small budget, when more servers are remembered than fit, then the oldest are evicted and only Hetzner can answer for them', () => {
    const probe = new CreatedServers();
    probe.remember(createAnswer(1));
    const perEntry = probe.held.bytes;
    const cache = new CreatedServers(perEntry * 3 + perEntry / 2);
    for (let n = 1; n <= 5; n++) cache.remember(createAnswer(n));
    for (let n = 1; n <= 5; n++) succeed(cache, n);
    expect(cache.held.entries).toBe(3);
    expect([1, 2, 3, 4, 5].map((n) => cache.running(String(n)) !== null)).toEqual([false, false, true, true, true]);
  });

  it('answers once: a later read, or a read before the actions succeeded, gets null', () => {
    const cache = new CreatedServers();
    cache.remember(createAnswer(7));
    cache.observe([action(14, 'create_server', 'success')]);
    expect(cache.running('7')).toBeNull();
    cache.observe([action(15, 'start_server', 'success')]);
    expect(cache.running('7')).toMatchObject({ serverId: '7', status: 'running', ipv4: '10.0.0.7' });
    expect(cache.running('7')).toBeNull();
  });
});
