import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  actionListSchema,
  actionResponseSchema,
  createServerResponseSchema,
  errorEnvelopeSchema,
  serverListSchema,
  serverResponseSchema,
  sshKeyListSchema,
  sshKeyResponseSchema,
} from '../../src/providers/hetzner/hetzner-schemas.ts';
import { runHetznerSimulatorCli } from '../../src/simulators/hetzner/cli.ts';
import { startHetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { useSimulator } from '../providers/simulator-fixture.ts';

const sim = useSimulator({ actionDurationMs: 60_000 });

/** Raw HTTP, so the simulator's own answers are checked against the client's schemas. */
const call = async (method: string, path: string, body?: unknown, token: string | null = sim().token) => {
  const res = await fetch(`${sim().url}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as unknown };
};
const conforms = <S extends z.ZodType>(schema: S, r: { json: unknown; headers: Headers }): z.infer<S> => {
  expect(r.headers.get('x-correlation-id')).toMatch(/^[0-9a-f]{16}$/);
  return schema.parse(r.json);
};
const errorCode = (r: { json: unknown; headers: Headers }) => conforms(errorEnvelopeSchema, r).error.code;

const seed = async () => {
  const key = conforms(sshKeyResponseSchema, await call('POST', '/ssh_keys', { name: 'k', public_key: generateOpenSshEd25519('t').publicKey, labels: { env: 'prod' } })).ssh_key;
  const created = conforms(createServerResponseSchema, await call('POST', '/servers', {
    name: 'web-1', server_type: 'cx22', image: 'debian-12', location: 'fsn1', ssh_keys: [key.id], labels: { env: 'prod', tier: 'web' }, start_after_create: true,
  }));
  return { key, created };
};

describe('simulator conformance: every answer parses with the client’s schemas', () => {
  it('serves SSH keys, servers and actions in Hetzner’s shapes', async () => {
    const { key, created } = await seed();
    expect(created.server.status).toBe('initializing');
    expect(created.root_password).toBeNull();
    expect(created.next_actions.map((a) => a.command)).toEqual(['start_server']);
    const id = created.server.id;
    conforms(sshKeyListSchema, await call('GET', `/ssh_keys?fingerprint=${encodeURIComponent(key.fingerprint)}`));
    conforms(serverListSchema, await call('GET', '/servers?name=web-1'));
    conforms(serverResponseSchema, await call('GET', `/servers/${id}`));
    conforms(actionListSchema, await call('GET', `/servers/${id}/actions`));
    conforms(actionListSchema, await call('GET', `/actions?id=${created.action.id}&id=${created.next_actions[0]!.id}`));
    conforms(actionResponseSchema, await call('GET', `/actions/${created.action.id}`));
  });

  it('answers errors in the envelope with Hetzner’s codes', async () => {
    const { key } = await seed();
    const server = { name: 'web-1', server_type: 'cx22', image: 'debian-12', ssh_keys: [key.id] };
    expect(errorCode(await call('GET', '/servers', undefined, null))).toBe('unauthorized');
    expect(errorCode(await call('GET', '/servers', undefined, 'wrong'))).toBe('unauthorized');
    expect(errorCode(await call('GET', '/servers/4711'))).toBe('not_found');
    expect(errorCode(await call('POST', '/servers', server))).toBe('uniqueness_error');
    expect(errorCode(await call('POST', '/servers', { ...server, name: 'web-2', ssh_keys: [999] }))).toBe('invalid_input');
    expect(errorCode(await call('POST', '/ssh_keys', { name: 'k2', public_key: key.public_key }))).toBe('uniqueness_error');
    expect(errorCode(await call('GET', '/servers?label_selector=env%20in%20(a'))).toBe('invalid_input');
    expect(errorCode(await call('GET', '/servers?per_page=51'))).toBe('invalid_input');
    const id = conforms(serverListSchema, await call('GET', '/servers')).servers[0]!.id;
    const locked = await call('DELETE', `/servers/${id}`);
    expect([locked.status, errorCode(locked)]).toEqual([423, 'locked']);
  });

  it('says which field broke uniqueness', async () => {
    const { key } = await seed();
    const dup = await call('POST', '/ssh_keys', { name: 'other', public_key: key.public_key });
    expect(conforms(errorEnvelopeSchema, dup).error.details).toEqual({ fields: [{ name: 'public_key' }] });
  });

  it('sends rate-limit headers on API answers', async () => {
    const r = await call('GET', '/servers');
    expect(Number(r.headers.get('ratelimit-limit'))).toBe(3600);
    expect(Number(r.headers.get('ratelimit-remaining'))).toBeLessThan(3600);
    expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
  });
});

describe('simulator semantics', () => {
  it('paginates with meta.pagination and a Link header', async () => {
    for (let i = 0; i < 7; i++) await call('POST', '/ssh_keys', { name: `k${i}`, public_key: generateOpenSshEd25519('t').publicKey });
    const r = await call('GET', '/ssh_keys?page=2&per_page=3');
    const body = conforms(sshKeyListSchema, r);
    expect(body.ssh_keys.map((k) => k.name)).toEqual(['k3', 'k4', 'k5']);
    expect(body.meta.pagination).toEqual({ page: 2, per_page: 3, previous_page: 1, next_page: 3, last_page: 3, total_entries: 7 });
    expect(r.headers.get('link')).toContain('rel="next"');
  });

  it('filters by every label selector form', async () => {
    const mk = (name: string, labels: Record<string, string>) =>
      call('POST', '/servers', { name, server_type: 'cx22', image: 'debian-12', labels });
    await mk('a', { env: 'prod', tier: 'web' });
    await mk('b', { env: 'dev', tier: 'db' });
    await mk('c', { env: 'test' });
    const names = async (sel: string) =>
      conforms(serverListSchema, await call('GET', `/servers?label_selector=${encodeURIComponent(sel)}`)).servers.map((s) => s.name);
    expect(await names('env==prod')).toEqual(['a']);
    expect(await names('env=prod')).toEqual(['a']);
    expect(await names('env!=prod')).toEqual(['b', 'c']);
    expect(await names('tier')).toEqual(['a', 'b']);
    expect(await names('!tier')).toEqual(['c']);
    expect(await names('env in (dev,test)')).toEqual(['b', 'c']);
    expect(await names('env notin (dev,test)')).toEqual(['a']);
    expect(await names('env in (prod,dev),tier==db')).toEqual(['b']);
  });

  it('rejects invalid and reserved labels', async () => {
    const r = await call('POST', '/servers', { name: 'x', server_type: 'cx22', image: 'debian-12', labels: { 'hetzner.cloud/x': 'y' } });
    expect(errorCode(r)).toBe('invalid_input');
  });

  it('moves a server from initializing through starting to running as its actions progress', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const timed = await startHetznerSimulator({ actionDurationMs: 1_000, clock: () => now });
    try {
      const api = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${timed.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${timed.token}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return (await res.json()) as unknown;
      };
      const created = createServerResponseSchema.parse(await api('POST', '/servers', { name: 'w', server_type: 'cx22', image: 'debian-12' }));
      const look = async () => {
        const server = serverResponseSchema.parse(await api('GET', `/servers/${created.server.id}`)).server;
        const actions = actionListSchema.parse(await api('GET', `/servers/${created.server.id}/actions`)).actions;
        return [server.status, ...actions.map((a) => `${a.command}:${a.status}:${a.progress}`)];
      };
      expect(await look()).toEqual(['initializing', 'create_server:running:0', 'start_server:running:0']);
      now += 500;
      expect(await look()).toEqual(['initializing', 'create_server:running:50', 'start_server:running:25']);
      now += 500;
      expect(await look()).toEqual(['starting', 'create_server:success:100', 'start_server:running:50']);
      now += 1_000;
      expect(await look()).toEqual(['running', 'create_server:success:100', 'start_server:success:100']);
    } finally {
      await timed.close();
    }
  });

  it('in zero-latency mode, actions succeed and the server runs at once', async () => {
    const fast = await startHetznerSimulator({ actionDurationMs: 0 });
    try {
      const res = await fetch(`${fast.url}/servers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${fast.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'w', server_type: 'cx22', image: 'debian-12' }),
      });
      const body = createServerResponseSchema.parse(await res.json());
      expect([body.server.status, body.action.status, body.next_actions[0]!.status]).toEqual(['running', 'success', 'success']);
      expect(body.server.public_net.ipv4?.ip).toBe('127.0.0.1');
    } finally {
      await fast.close();
    }
  });

  it('only ever listens on and hands out loopback addresses', async () => {
    await expect(startHetznerSimulator({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    await expect(startHetznerSimulator({ serverIpv4: '10.0.0.1' })).rejects.toThrow(/127\.0\.0\.0\/8/);
    const other = await startHetznerSimulator({ serverIpv4: '127.0.0.42', actionDurationMs: 0 });
    await other.close();
  });

  it('exposes fault injection, action control and state over /__admin without the API token', async () => {
    const admin = (path: string, body?: unknown) =>
      fetch(`${sim().origin}/__admin/${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    expect((await admin('faults', { operation: 'list_servers', count: 2, effect: { type: 'error', status: 503, code: 'unavailable' } })).status).toBe(204);
    expect((await admin('faults', { operation: 'nope', effect: { type: 'drop' } })).status).toBe(400);
    expect((await call('GET', '/servers')).status).toBe(503);
    expect((await call('GET', '/servers')).status).toBe(503);
    expect((await call('GET', '/servers')).status).toBe(200);
    expect((await admin('actions', { durationMs: 0, failNext: { count: 1, code: 'action_failed' } })).status).toBe(204);
    const created = createServerResponseSchema.parse((await call('POST', '/servers', { name: 'w', server_type: 'cx22', image: 'debian-12' })).json);
    expect(created.action.error?.code).toBe('action_failed');
    const state = (await (await admin('state')).json()) as { servers: unknown[]; counters: { serversCreated: number; calls: Record<string, number> } };
    expect(state.servers).toHaveLength(1);
    expect(state.counters.serversCreated).toBe(1);
    expect(state.counters.calls.list_servers).toBe(3);
    expect((await admin('reset', {})).status).toBe(204);
    expect(sim().admin.snapshot().servers).toHaveLength(0);
  });

  it('drops the connection after creating the server when told to', async () => {
    sim().admin.injectFault({ operation: 'create_server', applyFirst: true, effect: { type: 'drop' } });
    await expect(call('POST', '/servers', { name: 'w', server_type: 'cx22', image: 'debian-12' })).rejects.toThrow();
    expect(sim().admin.snapshot().counters.serversCreated).toBe(1);
  });
});

describe('runHetznerSimulatorCli', () => {
  it('starts from flags and prints the HCLOUD_* exports', async () => {
    const lines: string[] = [];
    const cli = await runHetznerSimulatorCli(['--port', '0', '--token', 'cli-token', '--action-duration-ms', '0'], (l) => lines.push(l));
    try {
      expect(lines).toContain(`export HCLOUD_ENDPOINT=${cli.url}`);
      expect(lines).toContain('export HCLOUD_TOKEN=cli-token');
      const res = await fetch(`${cli.url}/servers`, { headers: { authorization: 'Bearer cli-token' } });
      expect(res.status).toBe(200);
    } finally {
      await cli.close();
    }
  });

  it('refuses a non-loopback host', async () => {
    await expect(runHetznerSimulatorCli(['--host', '192.0.2.1', '--port', '0'], () => {})).rejects.toThrow(/loopback/);
  });
});
