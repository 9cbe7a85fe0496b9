import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { sealedFileSchema, seal, unseal } from './encrypted-file.ts';
import { md5Fingerprint } from './fingerprint.ts';
import { generateOpenSshEd25519 } from './openssh-key.ts';

export interface SshKeyPair {
  /** `ssh-ed25519 AAAA… pressluft`: safe to log, send to the provider and record in events. */
  publicKey: string;
  /** MD5 colon-hex of the key blob, as Hetzner computes it. */
  fingerprint: string;
  /**
   * OpenSSH private key text. Not enumerable, so JSON.stringify, spreads and loggers skip it:
   * it must never reach an event or a log line.
   */
  readonly privateKey: string;
}

export interface SshKeyStoreOptions {
  /** The control plane's data dir; the store lives in `<dataDir>/ssh`. */
  dataDir: string;
  /** A secret from config. Without one, a random key is kept in a 0600 file (see encryptionKeyFile). */
  encryptionKey?: string;
  /** Where the generated encryption key lives. Default `<dataDir>/ssh/key-encryption.key`. */
  encryptionKeyFile?: string;
}

const COMMENT = 'pressluft';
const payloadSchema = z.object({ publicKey: z.string().min(1), privateKey: z.string().min(1) });

export const sshKeyStorePaths = (o: SshKeyStoreOptions) => {
  const dir = join(o.dataDir, 'ssh');
  return {
    dir,
    sealed: join(dir, 'id_ed25519.sealed.json'),
    publicKey: join(dir, 'id_ed25519.pub'),
    encryptionKeyFile: o.encryptionKeyFile ?? join(dir, 'key-encryption.key'),
  };
};

const makePair = (publicKey: string, privateKey: string): SshKeyPair => {
  const pair = { publicKey, fingerprint: md5Fingerprint(publicKey) } as SshKeyPair;
  Object.defineProperty(pair, 'privateKey', { value: privateKey, enumerable: false });
  return pair;
};

const exists = (e: unknown, code: string): boolean => (e as NodeJS.ErrnoException | null)?.code === code;

/** Writes a 0600 file only if none exists yet; returns false when another writer won. */
export const createExclusive = async (path: string, data: string): Promise<boolean> => {
  // Write then link: the final path appears complete or not at all, and link fails if it exists.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if (exists(e, 'EEXIST')) return false;
    throw e;
  } finally {
    await unlink(tmp);
  }
};

export const readIfPresent = async (path: string): Promise<string | null> => {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (exists(e, 'ENOENT')) return null;
    throw e;
  }
};

/**
 * The configured secret, else the key file (created on first use only: a missing file next to a sealed key is an error).
 * The host-key store seals and derives with the same secret.
 */
export const encryptionSecret = async (o: SshKeyStoreOptions, mayCreate: boolean): Promise<string> => {
  if (o.encryptionKey !== undefined) {
    if (o.encryptionKey.length < 16) throw new AppError('SSH_KEY_STORE_DECRYPT_FAILED', 'the SSH key encryption key must be at least 16 characters', false);
    return o.encryptionKey;
  }
  const path = sshKeyStorePaths(o).encryptionKeyFile;
  const found = await readIfPresent(path);
  if (found !== null) return found.trim();
  if (!mayCreate) {
    throw new AppError('SSH_KEY_STORE_DECRYPT_FAILED', `the SSH key is sealed but its encryption key file ${path} is missing`, false, { path });
  }
  await createExclusive(path, `${randomBytes(32).toString('base64')}\n`);
  return (await readFile(path, 'utf8')).trim();
};

const load = async (o: SshKeyStoreOptions, sealedText: string, path: string): Promise<SshKeyPair> => {
  let json: unknown;
  try {
    json = JSON.parse(sealedText);
  } catch {
    json = null;
  }
  const sealed = sealedFileSchema.safeParse(json);
  if (!sealed.success) throw new AppError('SSH_KEY_STORE_DECRYPT_FAILED', `${path} is not a sealed key file`, false, { path });
  const plain = await unseal(sealed.data, await encryptionSecret(o, false), path);
  const payload = payloadSchema.parse(JSON.parse(plain.toString('utf8')));
  return makePair(payload.publicKey, payload.privateKey);
};

/**
 * The control plane's one ed25519 key pair: generated on first use, sealed with AES-256-GCM under
 * the data dir, and the same pair on every later start (so the provider-side fingerprint never changes).
 */
export const loadOrCreateSshKeyPair = async (o: SshKeyStoreOptions): Promise<SshKeyPair> => {
  const paths = sshKeyStorePaths(o);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });

  const existing = await readIfPresent(paths.sealed);
  if (existing !== null) return load(o, existing, paths.sealed);

  const generated = generateOpenSshEd25519(COMMENT);
  const secret = await encryptionSecret(o, true);
  const sealed = await seal(Buffer.from(JSON.stringify(generated), 'utf8'), secret);
  // Two processes starting at once: the loser reads the winner's key, so there is still one pair.
  if (!(await createExclusive(paths.sealed, `${JSON.stringify(sealed)}\n`))) {
    return load(o, await readFile(paths.sealed, 'utf8'), paths.sealed);
  }
  await writeFile(paths.publicKey, `${generated.publicKey}\n`, { mode: 0o600 });
  await chmod(paths.publicKey, 0o600);
  return makePair(generated.publicKey, generated.privateKey);
};
