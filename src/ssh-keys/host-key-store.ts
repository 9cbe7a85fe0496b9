import { createHash, hkdfSync } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { sealedFileSchema, sealerFor, unseal } from './encrypted-file.ts';
import { sha256Fingerprint } from './fingerprint.ts';
import { createExclusive, encryptionSecret, readIfPresent, sshKeyStorePaths, type SshKeyStoreOptions } from './key-pair-store.ts';
import { openSshEd25519FromSeed } from './openssh-key.ts';

/** A node's SSH host key: the public half and fingerprint go into events, the private half only into user_data. */
export interface HostKeyPair {
  /** `ssh-ed25519 AAAA…` without a comment, as sshd presents it. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** OpenSSH private key text. Not enumerable, so JSON.stringify, spreads and loggers skip it. */
  readonly privateKey: string;
}

export interface HostKeyStore {
  /** The host key of a server created by this job: derived, and a sealed copy written under the data dir if none is there. */
  forJob(nodeId: string, jobId: string): Promise<HostKeyPair>;
  /** The same key without touching the disk: cheap, for finding which job's key a fingerprint is. */
  derive(nodeId: string, jobId: string): HostKeyPair;
}

/** Domain separation: a change of this label changes every derived key, so it is versioned. */
const HKDF_SALT = 'pressluft host key v1';
const payloadSchema = z.object({ publicKey: z.string().min(1), privateKey: z.string().min(1) });

const makePair = (publicKey: string, privateKey: string): HostKeyPair => {
  const pair = { publicKey, fingerprint: sha256Fingerprint(publicKey) } as HostKeyPair;
  Object.defineProperty(pair, 'privateKey', { value: privateKey, enumerable: false });
  return pair;
};

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
};

/** The HKDF info: both ids, NUL-separated (ids never contain NUL). */
const infoOf = (nodeId: string, jobId: string): Buffer => Buffer.from(`${nodeId}\0${jobId}`, 'utf8');

/** File names carry no ids in clear (ids may hold any character): a digest of them. */
const fileName = (info: Buffer): string => `${createHash('sha256').update(info).digest('hex').slice(0, 40)}.sealed.json`;

/**
 * Host keys per (node, job), ADR 0014: the ed25519 seed is HKDF-SHA256 of the key-encryption secret
 * and the ids, so every worker with the same PRESSLUFT_SECRET_KEY derives the same key without
 * shared storage, and a retry on another host sends the key the intent recorded. Each key is also
 * sealed (AES-256-GCM, like the control plane's key) under `<dataDir>/host-keys/`, mode 0600.
 */
export const openHostKeyStore = async (o: SshKeyStoreOptions): Promise<HostKeyStore> => {
  const dir = join(o.dataDir, 'host-keys');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(sshKeyStorePaths(o).dir, { recursive: true, mode: 0o700 });
  // A key file may be minted only while no control-plane key is sealed under another one.
  const secret = await encryptionSecret(o, (await readIfPresent(sshKeyStorePaths(o).sealed)) === null);
  const ikm = Buffer.from(secret, 'utf8');

  const derive = (nodeId: string, jobId: string): HostKeyPair => {
    const seed = Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, infoOf(nodeId, jobId), 32));
    const { publicKey, privateKey } = openSshEd25519FromSeed(seed, '');
    return makePair(publicKey, privateKey);
  };

  const seal = await sealerFor(secret);

  return {
    derive,
    async forJob(nodeId, jobId) {
      const pair = derive(nodeId, jobId);
      const path = join(dir, fileName(infoOf(nodeId, jobId)));
      // Derivation is the source of truth; the sealed copy is written once (a concurrent writer's copy holds the same key).
      if ((await readIfPresent(path)) === null) {
        await createExclusive(path, `${JSON.stringify(seal(Buffer.from(JSON.stringify({ publicKey: pair.publicKey, privateKey: pair.privateKey }), 'utf8')))}\n`);
      }
      return pair;
    },
  };
};

/** A sealed host key file, opened (tests and operators; the saga never needs to read it back). */
export const readSealedHostKey = async (path: string, o: SshKeyStoreOptions): Promise<HostKeyPair> => {
  const sealed = sealedFileSchema.safeParse(parseJson(await readFile(path, 'utf8')));
  if (!sealed.success) throw new AppError('SSH_KEY_STORE_DECRYPT_FAILED', `${path} is not a sealed key file`, false, { path });
  const payload = payloadSchema.parse(JSON.parse((await unseal(sealed.data, await encryptionSecret(o, false), path)).toString('utf8')));
  return makePair(payload.publicKey, payload.privateKey);
};

/** Where a job's sealed host key lives (tests check its mode and contents). */
export const hostKeyPath = (dataDir: string, nodeId: string, jobId: string): string =>
  join(dataDir, 'host-keys', fileName(infoOf(nodeId, jobId)));
