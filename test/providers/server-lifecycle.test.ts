import { describe, expect, it } from 'vitest';
import type { HetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import type { ProviderError } from '../../src/providers/provider-port.ts';
import { startHetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { drainRateLimit, providerFor, rejectionOf, specFor, useSimulator, waitForActions } from './simulator-fixture.ts';

const sim = useSimulator();
const publicKey = generateOpenSshEd25519('pressluft').publicKey;

const ready = async (): Promise<{ p: HetznerProvider; keyId: string }> => {
  const p = providerFor(sim());
  return { p, keyId: (await p.ensureSshKey(publicKey)).keyId };
};
const serversOf = (nodeId: string) =>
  sim().admin.snapshot().servers.filter((s) => s.labels['pressluft/node-id'] === nodeId);

describe('createServer', () => {
  it('creates one labelled server with our key, no root password, and reports both actions', async () => {
    const { p, keyId } = await ready();
    const created = await p.createServer(specFor('n1', keyId));
    expect(created).toMatchObject({ adopted: false });
    expect(created.actionIds).toHaveLength(2);
    const [server, ...others] = serversOf('n1');
    expect(others).toHaveLength(0);
    expect(server).toMatchObject({
      id: Number(created.serverId),
      name: 'node-n1',
      labels: { 'pressluft/managed-by': 'pressluft', 'pressluft/node-id': 'n1', 'pressluft/job-id': 'job-1' },
    });
    expect(p.serverLabels?.('n1', 'job-1')).toEqual(server!.labels);
  });

  it('adopts the server after a dropped create response: exactly one server for the node', async () => {
    const { p, keyId } = await ready();
    sim().admin.setActionDuration(60_000);
    sim().admin.injectFault({ operation: 'create_server', applyFirst: true, effect: { type: 'drop' } });
    const lost = await rejectionOf(p.createServer(specFor('n1', keyId)));
    expect(lost).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true, uncertain: true });

    const retried = await p.createServer(specFor('n1', keyId, { jobId: 'job-1' }));
    expect(retried.adopted).toBe(true);
    expect(serversOf('n1').map((s) => String(s.id))).toEqual([retried.serverId]);
    expect(sim().admin.snapshot().counters.serversCreated).toBe(1);
    // Looked up before creating: the retry never POSTed.
    expect(sim().admin.snapshot().counters.calls.create_server).toBe(1);
    // The lost response held the action ids; adoption recovers them from the server.
    const states = await p.getActions(retried.actionIds);
    expect(states.map((s) => s.status)).toEqual(['running', 'running']);
  });

  it('adopts when a concurrent create won the name race and the labels prove the server is ours', async () => {
    const { p, keyId } = await ready();
    sim().admin.injectFault({ operation: 'create_server', applyFirst: true, effect: { type: 'error', status: 409, code: 'uniqueness_error', details: { fields: [{ name: 'name' }] } } });
    const created = await p.createServer(specFor('n1', keyId));
    expect(created.adopted).toBe(true);
    expect(serversOf('n1')).toHaveLength(1);
  });

  it('refuses a name taken by a server without our labels: PROVIDER_SERVER_NAME_CONFLICT, nothing created', async () => {
    const { p, keyId } = await ready();
    const foreign = await p.client.createServer({ name: 'node-n1', server_type: 'cx22', image: 'debian-12', ssh_keys: [Number(keyId)], labels: { team: 'other' } });
    const e = await rejectionOf(p.createServer(specFor('n1', keyId)));
    expect(e).toMatchObject({ code: 'PROVIDER_SERVER_NAME_CONFLICT', retryable: false, details: { serverId: String(foreign.server.id) } });
    expect(sim().admin.snapshot().servers).toHaveLength(1);
    expect(sim().admin.snapshot().counters.serversCreated).toBe(1);
  });

  it('refuses a name held by another node’s server even though it is managed by pressluft', async () => {
    const { p, keyId } = await ready();
    await p.createServer(specFor('n2', keyId, { name: 'shared-name' }));
    await expect(p.createServer(specFor('n1', keyId, { name: 'shared-name' }))).rejects.toMatchObject({ code: 'PROVIDER_SERVER_NAME_CONFLICT' });
    expect(serversOf('n1')).toHaveLength(0);
  });

  it('recovers from resource_unavailable on a later attempt with exactly one server', async () => {
    const { p, keyId } = await ready();
    sim().admin.injectFault({ operation: 'create_server', count: 2, effect: { type: 'error', status: 412, code: 'resource_unavailable', message: 'error during placement' } });
    const errors: ProviderError[] = [];
    let created;
    for (let attempt = 1; attempt <= 5 && !created; attempt++) {
      try {
        created = await p.createServer(specFor('n1', keyId));
      } catch (e) {
        errors.push(e as ProviderError);
        if (!(e as ProviderError).retryable) throw e;
      }
    }
    expect(errors.map((e) => e.code)).toEqual(['PROVIDER_RESOURCE_UNAVAILABLE', 'PROVIDER_RESOURCE_UNAVAILABLE']);
    expect(created?.adopted).toBe(false);
    expect(serversOf('n1')).toHaveLength(1);
  });

  it('waits out a 429 on its lookups until RateLimit-Reset and still creates exactly one server', async () => {
    // Three requests refilling at 0.5/s: after a 429 the bucket is full (RateLimit-Reset) ≥ 4 s later,
    // and then holds enough for createServer's two lookups and its POST.
    const limited = await startHetznerSimulator({ actionDurationMs: 0, rateLimit: { limit: 3, refillPerSecond: 0.5 } });
    try {
      const p = providerFor(limited);
      const { keyId } = await p.ensureSshKey(publicKey);
      await drainRateLimit(limited);
      const started = Date.now();
      const created = await p.createServer(specFor('n1', keyId));
      expect(created.adopted).toBe(false);
      expect(limited.admin.snapshot().counters.rateLimited).toBe(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
      expect(limited.admin.snapshot().servers).toHaveLength(1);
    } finally {
      await limited.close();
    }
  });

  it('rejects a name that is not an RFC 1123 hostname before calling Hetzner', async () => {
    const { p, keyId } = await ready();
    await expect(p.createServer(specFor('n1', keyId, { name: 'Not_A_Host' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID_REQUEST' });
    expect(sim().admin.snapshot().counters.calls.create_server ?? 0).toBe(0);
  });

  it('labels a node id that label values cannot hold by a stable digest, and still finds the server', async () => {
    const { p, keyId } = await ready();
    const nodeId = `_${'x'.repeat(63)}`;
    const created = await p.createServer(specFor(nodeId, keyId, { name: 'long-node' }));
    expect((await p.findServer(nodeId, 'long-node'))?.serverId).toBe(created.serverId);
    expect((await p.createServer(specFor(nodeId, keyId, { name: 'long-node' }))).adopted).toBe(true);
  });
});

describe('findServer and getServer', () => {
  it('finds by label first, even after the name changed, and returns null for an unknown node', async () => {
    const { p, keyId } = await ready();
    const created = await p.createServer(specFor('n1', keyId));
    expect((await p.findServer('n1', 'some-other-name'))?.serverId).toBe(created.serverId);
    expect(await p.findServer('n9', 'node-n9')).toBeNull();
  });

  it('reports status and loopback address; an unknown id is PROVIDER_SERVER_NOT_FOUND', async () => {
    const { p, keyId } = await ready();
    const created = await p.createServer(specFor('n1', keyId));
    expect(await p.getServer(created.serverId)).toMatchObject({ status: 'running', ipv4: '127.0.0.1', ipv6: null, name: 'node-n1' });
    await expect(p.getServer('999999')).rejects.toMatchObject({ code: 'PROVIDER_SERVER_NOT_FOUND', retryable: false });
  });

  it('refuses action ids Hetzner does not know', async () => {
    const { p } = await ready();
    await expect(p.getActions(['424242'])).rejects.toMatchObject({ code: 'PROVIDER_INVALID_REQUEST' });
  });
});

describe('waiting for actions', () => {
  it('reports running until the actions finish, then the server is running with an address', async () => {
    const { p, keyId } = await ready();
    sim().admin.setActionDuration(600);
    const created = await p.createServer(specFor('n1', keyId));
    expect((await p.getServer(created.serverId)).status).not.toBe('running');
    await waitForActions(p, created.actionIds, 20_000);
    expect(await p.getServer(created.serverId)).toMatchObject({ status: 'running', ipv4: '127.0.0.1' });
  });

  it('maps an action that ends in error to PROVIDER_ACTION_FAILED with Hetzner’s code', async () => {
    const { p, keyId } = await ready();
    sim().admin.setActionDuration(50);
    sim().admin.failNextActions(1, 'unknown_error', 'server is locked');
    const created = await p.createServer(specFor('n1', keyId));
    const e = await rejectionOf(waitForActions(p, created.actionIds, 20_000));
    expect(e).toMatchObject({ code: 'PROVIDER_ACTION_FAILED', retryable: false, details: { actionId: created.actionIds[0], providerCode: 'unknown_error' } });
  });

  it('gives up with PROVIDER_ACTION_TIMEOUT after the configured limit when an action never finishes', async () => {
    const { p, keyId } = await ready();
    sim().admin.setActionDuration(null);
    const created = await p.createServer(specFor('n1', keyId));
    const started = Date.now();
    const e = await rejectionOf(waitForActions(p, created.actionIds, 300));
    expect(e).toMatchObject({ code: 'PROVIDER_ACTION_TIMEOUT', retryable: false, details: { limitMs: 300, pendingIds: created.actionIds } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });
});
