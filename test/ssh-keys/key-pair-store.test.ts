import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateSshKeyPair, sshKeyStorePaths } from '../../src/ssh-keys/key-pair-store.ts';
import { md5Fingerprint } from '../../src/ssh-keys/fingerprint.ts';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pressluft-keystore-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const blob = (line: string) => line.split(' ')[1];

describe('loadOrCreateSshKeyPair', () => {
  it('generates the pair once and returns the same pair after a restart', async () => {
    const first = await loadOrCreateSshKeyPair({ dataDir });
    const second = await loadOrCreateSshKeyPair({ dataDir });
    expect(first.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ pressluft$/);
    expect(second.publicKey).toBe(first.publicKey);
    expect(second.privateKey).toBe(first.privateKey);
    expect(second.fingerprint).toBe(first.fingerprint);
  });

  it('converges on one pair when two starts race', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => loadOrCreateSshKeyPair({ dataDir })));
    expect(b!.fingerprint).toBe(a!.fingerprint);
    expect(c!.fingerprint).toBe(a!.fingerprint);
    expect((await loadOrCreateSshKeyPair({ dataDir })).fingerprint).toBe(a!.fingerprint);
  });

  it('keeps every file at 0600 and the directory at 0700', async () => {
    await loadOrCreateSshKeyPair({ dataDir });
    const p = sshKeyStorePaths({ dataDir });
    expect(await mode(p.dir)).toBe(0o700);
    expect(await mode(p.sealed)).toBe(0o600);
    expect(await mode(p.publicKey)).toBe(0o600);
    expect(await mode(p.encryptionKeyFile)).toBe(0o600);
  });

  it('stores only ciphertext: the private key text appears nowhere on disk', async () => {
    const pair = await loadOrCreateSshKeyPair({ dataDir });
    const p = sshKeyStorePaths({ dataDir });
    const onDisk = [await readFile(p.sealed, 'utf8'), await readFile(p.publicKey, 'utf8'), await readFile(p.encryptionKeyFile, 'utf8')].join('\n');
    const body = pair.privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
    expect(body.length).toBeGreaterThan(2);
    for (const line of body) expect(onDisk).not.toContain(line);
    expect(onDisk).not.toContain('OPENSSH PRIVATE KEY');
  });

  it('keeps the private key out of JSON and spreads', async () => {
    const pair = await loadOrCreateSshKeyPair({ dataDir });
    expect(pair.privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(JSON.stringify(pair)).not.toContain('PRIVATE');
    expect({ ...pair }).not.toHaveProperty('privateKey');
  });

  it('fails clearly with the wrong encryption key', async () => {
    await loadOrCreateSshKeyPair({ dataDir, encryptionKey: 'the-right-secret-value' });
    await expect(loadOrCreateSshKeyPair({ dataDir, encryptionKey: 'some-other-secret-value' })).rejects.toMatchObject({
      code: 'SSH_KEY_STORE_DECRYPT_FAILED',
      retryable: false,
      message: expect.stringMatching(/encryption key is wrong/),
    });
  });

  it('fails clearly when the key file was replaced', async () => {
    await loadOrCreateSshKeyPair({ dataDir });
    await writeFile(sshKeyStorePaths({ dataDir }).encryptionKeyFile, 'not-the-key-that-sealed-it\n');
    await expect(loadOrCreateSshKeyPair({ dataDir })).rejects.toMatchObject({ code: 'SSH_KEY_STORE_DECRYPT_FAILED' });
  });

  it('refuses to mint a new key file next to an already sealed key', async () => {
    await loadOrCreateSshKeyPair({ dataDir });
    await rm(sshKeyStorePaths({ dataDir }).encryptionKeyFile);
    await expect(loadOrCreateSshKeyPair({ dataDir })).rejects.toMatchObject({ code: 'SSH_KEY_STORE_DECRYPT_FAILED', message: expect.stringMatching(/missing/) });
  });

  it('yields a public key whose ssh-keygen MD5 fingerprint is ours', async () => {
    const pair = await loadOrCreateSshKeyPair({ dataDir });
    const { stdout } = await execa('ssh-keygen', ['-l', '-E', 'md5', '-f', sshKeyStorePaths({ dataDir }).publicKey]);
    expect(stdout).toMatch(/^256 MD5:([0-9a-f]{2}:){15}[0-9a-f]{2} pressluft \(ED25519\)$/);
    expect(stdout).toContain(`MD5:${pair.fingerprint} `);
  });

  it('yields a private key that ssh-keygen reads (so ssh-add accepts it) and that matches the public key', async () => {
    const pair = await loadOrCreateSshKeyPair({ dataDir });
    // Over a pipe, as the runner feeds ssh-add: the key is never written to a file. (Node's stdio is a
    // socket, which /dev/stdin cannot open; cat turns it into a pipe.)
    const derived = (await execa('sh', ['-c', 'cat | ssh-keygen -y -f /dev/stdin'], { input: pair.privateKey })).stdout;
    expect(blob(derived)).toBe(blob(pair.publicKey));
  });
});

describe('md5Fingerprint', () => {
  it('ignores the comment and rejects a mangled key', async () => {
    const { publicKey } = await loadOrCreateSshKeyPair({ dataDir });
    expect(md5Fingerprint(publicKey.replace(/ pressluft$/, ' someone@else'))).toBe(md5Fingerprint(publicKey));
    expect(() => md5Fingerprint('ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAA')).toThrow(expect.objectContaining({ code: 'SSH_PUBLIC_KEY_INVALID' }));
  });
});
