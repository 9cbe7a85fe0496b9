import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';

/**
 * AES-256-GCM sealing for secrets at rest. The key is derived with scrypt from the configured
 * secret and a per-file salt, so any secret string works and equal plaintexts never look alike.
 */
const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number }) => Promise<Buffer>;
const KDF = { N: 16_384, r: 8, p: 1 } as const;

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
export const sealedFileSchema = z.object({
  version: z.literal(1),
  algorithm: z.literal('aes-256-gcm'),
  kdf: z.object({ name: z.literal('scrypt'), salt: b64, N: z.number().int(), r: z.number().int(), p: z.number().int() }),
  iv: b64,
  tag: b64,
  ciphertext: b64,
});
export type SealedFile = z.infer<typeof sealedFileSchema>;

const encrypt = (plaintext: Buffer, key: Buffer, salt: Buffer): SealedFile => {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    version: 1,
    algorithm: 'aes-256-gcm',
    kdf: { name: 'scrypt', salt: salt.toString('base64'), ...KDF },
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
};

export const seal = async (plaintext: Buffer, secret: string): Promise<SealedFile> => {
  const salt = randomBytes(16);
  return encrypt(plaintext, await scryptAsync(secret, salt, 32, KDF), salt);
};

/**
 * For many small files (host keys): scrypt runs once (about 0.1 s of CPU each time), and every file
 * gets its own random IV, which is what GCM needs. The files have the same format as seal()'s and
 * open with unseal(); those sealed by one sealer share its salt.
 */
export const sealerFor = async (secret: string): Promise<(plaintext: Buffer) => SealedFile> => {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, 32, KDF);
  return (plaintext) => encrypt(plaintext, key, salt);
};

/** GCM authenticates: a wrong secret or a tampered file fails here rather than yielding garbage. */
export const unseal = async (sealed: SealedFile, secret: string, source: string): Promise<Buffer> => {
  const { salt, N, r, p } = sealed.kdf;
  const key = await scryptAsync(secret, Buffer.from(salt, 'base64'), 32, { N, r, p });
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new AppError(
      'SSH_KEY_STORE_DECRYPT_FAILED',
      `cannot decrypt ${source}: the encryption key is wrong or the file was modified`,
      false,
      { path: source },
    );
  }
};
