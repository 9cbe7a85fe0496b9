import { describe, expect, it } from 'vitest';
import { startHetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { providerFor, specFor, useSimulator, waitForActions } from './simulator-fixture.ts';

const sim = useSimulator();
const publicKey = generateOpenSshEd25519('pressluft').publicKey;
const calls = (op: string): number => sim().admin.snapshot().counters.calls[op] ?? 0;

describe('the shared request budget', () => {
  it('sends no request it knows will be refused: 20 concurrent calls against a bucket of 3 refilling 4/s see no 429', async () => {
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 3, refillPerSecond: 4 } });
    try {
      const c = providerFor(limited).client;
      const started = Date.now();
      await Promise.all(Array.from({ length: 20 }, () => c.listServers({})));
      const counters = limited.admin.snapshot().counters;
      expect(counters.rateLimited).toBe(0);
      expect(counters.calls.list_servers).toBe(20);
      // 3 from the bucket, 17 at 4/s: the budget waited instead of sending.
      expect(Date.now() - started).toBeGreaterThanOrEqual(17 / 4 * 1000 - 300);
    } finally {
      await limited.close();
    }
  });
});

describe('requests saved per provision', () => {
  it('batches the action polls of many in-flight nodes into one list request', async () => {
    const p = providerFor(sim());
    const { keyId } = await p.ensureSshKey(publicKey);
    sim().admin.setActionDuration(null);
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => p.createServer(specFor(`b${i}`, keyId, { knownAbsent: true }))));
    const before = calls('list_actions');
    const states = await Promise.all(created.map((c) => p.getActions(c.actionIds)));
    expect(calls('list_actions') - before).toBe(1);
    expect(states.map((s) => s.map((a) => a.actionId))).toEqual(created.map((c) => c.actionIds));
    expect(states.flat().every((a) => a.status === 'running')).toBe(true);
  });

  it('splits a batch of more than 50 action ids into pages of 50', async () => {
    const p = providerFor(sim());
    const { keyId } = await p.ensureSshKey(publicKey);
    sim().admin.setActionDuration(null);
    const created = await Promise.all(Array.from({ length: 30 }, (_, i) => p.createServer(specFor(`c${i}`, keyId, { knownAbsent: true }))));
    const before = calls('list_actions');
    const states = await Promise.all(created.map((c) => p.getActions(c.actionIds)));
    expect(calls('list_actions') - before).toBe(2);
    expect(states.flat()).toHaveLength(60);
  });

  it('caches the SSH key id per process, and registers the key again when a create finds the id gone', async () => {
    const p = providerFor(sim());
    const [a, b] = await Promise.all([p.ensureSshKey(publicKey), p.ensureSshKey(publicKey)]);
    await p.ensureSshKey(publicKey);
    expect(b).toEqual(a);
    expect(calls('list_ssh_keys')).toBe(1);

    const res = await fetch(`${sim().url}/ssh_keys/${a.keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${sim().token}` } });
    expect(res.status).toBe(204);
    const created = await p.createServer(specFor('k1', a.keyId, { knownAbsent: true }));
    const snap = sim().admin.snapshot();
    expect(snap.counters.sshKeysCreated).toBe(2);
    expect(snap.servers.map((s) => s.id)).toEqual([Number(created.serverId)]);
    const fresh = await p.ensureSshKey(publicKey);
    expect(fresh.keyId).not.toBe(a.keyId);
    expect(snap.sshKeys.map((k) => String(k.id))).toEqual([fresh.keyId]);
  });

  it('skips the lookups only when the caller knows no earlier attempt reached Hetzner', async () => {
    const p = providerFor(sim());
    const { keyId } = await p.ensureSshKey(publicKey);
    await p.createServer(specFor('s1', keyId, { knownAbsent: true }));
    expect(calls('list_servers')).toBe(0);
    await p.createServer(specFor('s2', keyId));
    expect(calls('list_servers')).toBe(2);
    // A POST whose name is taken still ends in the adopt-by-labels path.
    const again = await p.createServer(specFor('s1', keyId, { knownAbsent: true }));
    expect(again.adopted).toBe(true);
    expect(sim().admin.snapshot().counters.serversCreated).toBe(2);
  });

  it('answers getServer from the create answer once both actions succeeded, and asks Hetzner otherwise', async () => {
    const p = providerFor(sim());
    const { keyId } = await p.ensureSshKey(publicKey);
    const created = await p.createServer(specFor('g1', keyId, { knownAbsent: true }));
    await waitForActions(p, created.actionIds, 10_000);
    const server = await p.getServer(created.serverId);
    expect(server).toMatchObject({ serverId: created.serverId, name: 'node-g1', status: 'running', ipv4: '127.0.0.1' });
    expect(calls('get_server')).toBe(0);
    expect(server).toEqual(await providerFor(sim()).getServer(created.serverId));
    expect(calls('get_server')).toBe(1);

    // Actions still running: only Hetzner knows the status.
    sim().admin.setActionDuration(null);
    const pending = await p.createServer(specFor('g2', keyId, { knownAbsent: true }));
    await p.getActions(pending.actionIds);
    await expect(p.getServer(pending.serverId)).resolves.toMatchObject({ status: 'initializing' });
    expect(calls('get_server')).toBe(2);
  });
});
