import { describe, expect, it } from 'vitest';
import { USER_DATA_MAX_BYTES } from '../../src/providers/cloud-init-host-keys.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { captureLogger, providerFor, specFor, useSimulator } from '../providers/simulator-fixture.ts';

const sim = useSimulator();

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${sim().url}${path}`, {
    method,
    headers: { authorization: `Bearer ${sim().token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; details?: { fields?: Array<{ name: string }> } } } };
};
const newKey = async () => (await call('POST', '/ssh_keys', { name: 'k', public_key: generateOpenSshEd25519('t').publicKey })).json as unknown as { ssh_key: { id: number } };
const server = (name: string, keyId: number, userData: unknown) =>
  call('POST', '/servers', { name, server_type: 'cx22', image: 'debian-12', location: 'fsn1', ssh_keys: [keyId], user_data: userData });

describe('user_data in the simulator, as Hetzner validates it', () => {
  it('keeps user_data per server and shows it only in the admin snapshot (programmatic and /__admin/state)', async () => {
    const { ssh_key } = await newKey();
    expect((await server('with-data', ssh_key.id, '#cloud-config\nssh_deletekeys: true\n')).status).toBe(201);
    expect((await server('without-data', ssh_key.id, undefined)).status).toBe(201);
    const byName = Object.fromEntries(sim().admin.snapshot().servers.map((s) => [s.name, s.userData]));
    expect(byName).toEqual({ 'with-data': '#cloud-config\nssh_deletekeys: true\n', 'without-data': null });
    const overHttp = (await (await fetch(`${sim().origin}/__admin/state`)).json()) as { servers: Array<{ name: string; userData: string | null }> };
    expect(overHttp.servers.find((s) => s.name === 'with-data')?.userData).toBe('#cloud-config\nssh_deletekeys: true\n');
    // The API itself never shows it again, as Hetzner does not.
    const listed = await call('GET', '/servers?name=with-data');
    expect(JSON.stringify(listed.json)).not.toContain('cloud-config');
  });

  it('answers 422 invalid_input for user_data over 32 KiB or not a string, and creates nothing', async () => {
    const { ssh_key } = await newKey();
    const exactly = 'x'.repeat(USER_DATA_MAX_BYTES);
    expect((await server('at-limit', ssh_key.id, exactly)).status).toBe(201);
    // Bytes, not characters: 16 Ki two-byte characters plus one byte is over.
    for (const [name, data] of [['too-big', `${exactly}x`], ['too-many-bytes', `${'ä'.repeat(USER_DATA_MAX_BYTES / 2)}x`], ['not-a-string', 42]] as const) {
      const r = await server(name, ssh_key.id, data);
      expect({ name, status: r.status, code: r.json.error?.code, field: r.json.error?.details?.fields?.[0]?.name }).toEqual({ name, status: 422, code: 'invalid_input', field: 'user_data' });
    }
    expect(sim().admin.snapshot().servers.map((s) => s.name)).toEqual(['at-limit']);
  });

  it('the adapter sends ServerSpec.userData as user_data, refuses more than 32 KiB itself, and logs none of it', async () => {
    const { logger, text } = captureLogger();
    const p = providerFor(sim(), logger);
    const { keyId } = await p.ensureSshKey(generateOpenSshEd25519('pressluft').publicKey);
    const secretish = '#cloud-config\n# marker-3f9c user data body\n';
    const created = await p.createServer(specFor('u1', keyId, { userData: secretish }));
    expect(sim().admin.snapshot().servers.find((s) => String(s.id) === created.serverId)?.userData).toBe(secretish);
    await expect(p.createServer(specFor('u2', keyId, { userData: 'y'.repeat(USER_DATA_MAX_BYTES + 1) }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID_REQUEST', retryable: false });
    expect(sim().admin.snapshot().counters.calls.create_server).toBe(1);
    expect(text()).not.toContain('marker-3f9c');
  });
});

describe('finishActions', () => {
  it('holds a create while action duration is null, then completes every running action at once', async () => {
    sim().admin.setActionDuration(null);
    const p = providerFor(sim());
    const { keyId } = await p.ensureSshKey(generateOpenSshEd25519('pressluft').publicKey);
    const a = await p.createServer(specFor('f1', keyId, { knownAbsent: true }));
    const b = await p.createServer(specFor('f2', keyId, { knownAbsent: true }));
    await new Promise((r) => setTimeout(r, 50));
    expect((await p.getActions(a.actionIds)).map((x) => x.status)).toEqual(['running', 'running']);
    // Two servers, two actions each (create_server, start_server).
    expect(sim().admin.finishActions()).toBe(4);
    expect((await p.getActions(a.actionIds)).map((x) => x.status)).toEqual(['success', 'success']);
    expect((await p.getServer(b.serverId)).status).toBe('running');
    // The route does the same; new actions stay held until it is called.
    const c = await p.createServer(specFor('f3', keyId, { knownAbsent: true }));
    expect((await p.getActions(c.actionIds)).map((x) => x.status)).toEqual(['running', 'running']);
    const res = await fetch(`${sim().origin}/__admin/actions/finish`, { method: 'POST' });
    expect(await res.json()).toEqual({ finished: 2 });
    expect((await p.getActions(c.actionIds)).map((x) => x.status)).toEqual(['success', 'success']);
    expect(sim().admin.finishActions()).toBe(0);
  });
});
