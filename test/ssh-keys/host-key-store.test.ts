import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostKeyCloudConfig, USER_DATA_MAX_BYTES } from '../../src/providers/cloud-init-host-keys.ts';
import { hostKeyPath, openHostKeyStore, readSealedHostKey } from '../../src/ssh-keys/host-key-store.ts';

const SECRET = 'a'.repeat(64);
const dirs: string[] = [];
let dataDir: string;
const newDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'pressluft-hostkeys-'));
  dirs.push(d);
  return d;
};
beforeEach(async () => {
  dataDir = await newDir();
});
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;
/** cloud-init parses user data with PyYAML's safe_load; so does this test. */
const parseLikeCloudInit = async (doc: string): Promise<unknown> =>
  JSON.parse((await execa('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: doc })).stdout);

describe('host keys per (node, job)', () => {
  it('derives the same key on every worker that shares the secret, and another key per job, node or secret', async () => {
    const a = await openHostKeyStore({ dataDir, encryptionKey: SECRET });
    const b = await openHostKeyStore({ dataDir: await newDir(), encryptionKey: SECRET });
    const other = await openHostKeyStore({ dataDir: await newDir(), encryptionKey: 'b'.repeat(64) });
    const k = await a.forJob('n1', 'j1');
    const onB = await b.forJob('n1', 'j1');
    expect(onB.publicKey).toBe(k.publicKey);
    expect(onB.privateKey).toBe(k.privateKey);
    expect(onB.fingerprint).toBe(k.fingerprint);
    const fingerprints = new Set([k, a.derive('n1', 'j2'), a.derive('n2', 'j1'), other.derive('n1', 'j1')].map((p) => p.fingerprint));
    expect(fingerprints.size).toBe(4);
    expect(k.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=*$/);
  });

  it('prints the fingerprint exactly as ssh-keygen -lf does, and its private half is the public one', async () => {
    const store = await openHostKeyStore({ dataDir, encryptionKey: SECRET });
    const k = await store.forJob('n1', 'j1');
    const pubFile = join(dataDir, 'host.pub');
    await execa('sh', ['-c', `cat > ${pubFile}`], { input: `${k.publicKey}\n` });
    const { stdout } = await execa('ssh-keygen', ['-lf', pubFile]);
    expect(stdout).toBe(`256 ${k.fingerprint} no comment (ED25519)`);
    const derived = (await execa('sh', ['-c', 'cat | ssh-keygen -y -f /dev/stdin'], { input: k.privateKey })).stdout;
    expect(derived.split(' ').slice(0, 2).join(' ')).toBe(k.publicKey);
  });

  it('seals the private half at rest: file 0600 in a 0700 dir, no plaintext, read back from the file', async () => {
    const store = await openHostKeyStore({ dataDir, encryptionKey: SECRET });
    const k = await store.forJob('node/with:odd chars', 'j1');
    const path = hostKeyPath(dataDir, 'node/with:odd chars', 'j1');
    expect(await mode(join(dataDir, 'host-keys'))).toBe(0o700);
    expect(await mode(path)).toBe(0o600);
    const onDisk = await readFile(path, 'utf8');
    expect(onDisk).not.toContain('OPENSSH PRIVATE KEY');
    for (const line of k.privateKey.split('\n').filter((l) => l && !l.startsWith('-----'))) expect(onDisk).not.toContain(line);
    expect(JSON.parse(onDisk)).toMatchObject({ version: 1, algorithm: 'aes-256-gcm' });
    expect(JSON.stringify(k)).not.toContain('PRIVATE');
    // The sealed copy opens with the secret to exactly the derived key, and not with another secret.
    const opened = await readSealedHostKey(path, { dataDir, encryptionKey: SECRET });
    expect(opened.privateKey).toBe(k.privateKey);
    expect(opened.fingerprint).toBe(k.fingerprint);
    await expect(readSealedHostKey(path, { dataDir, encryptionKey: 'b'.repeat(64) })).rejects.toMatchObject({ code: 'SSH_KEY_STORE_DECRYPT_FAILED' });
    // A second store on the same data dir keeps the file as it is.
    await (await openHostKeyStore({ dataDir, encryptionKey: SECRET })).forJob('node/with:odd chars', 'j1');
    expect(await readFile(path, 'utf8')).toBe(onDisk);
  });

  it('without PRESSLUFT_SECRET_KEY derives from the key file the control-plane key is sealed with', async () => {
    const first = await openHostKeyStore({ dataDir });
    const second = await openHostKeyStore({ dataDir });
    expect(second.derive('n', 'j').fingerprint).toBe(first.derive('n', 'j').fingerprint);
    expect(await mode(join(dataDir, 'ssh', 'key-encryption.key'))).toBe(0o600);
  });
});

describe('cloud-init user_data with the host key', () => {
  it('is a #cloud-config that deletes image keys, generates none and installs ours', async () => {
    const k = await (await openHostKeyStore({ dataDir, encryptionKey: SECRET })).forJob('n1', 'j1');
    const doc = hostKeyCloudConfig(k);
    expect(doc.startsWith('#cloud-config\n')).toBe(true);
    expect(await parseLikeCloudInit(doc)).toEqual({
      ssh_deletekeys: true,
      ssh_genkeytypes: [],
      ssh_keys: { ed25519_private: k.privateKey, ed25519_public: k.publicKey },
    });
  });

  it('refuses a document over 32 KiB', () => {
    const body = Array.from({ length: 600 }, () => 'A'.repeat(70));
    const huge = ['-----BEGIN OPENSSH PRIVATE KEY-----', ...body, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n');
    expect(huge.length).toBeGreaterThan(USER_DATA_MAX_BYTES);
    expect(() => hostKeyCloudConfig({ publicKey: 'ssh-ed25519 AAAA', privateKey: huge })).toThrow(expect.objectContaining({ code: 'HOST_KEY_INVALID' }));
  });
});
