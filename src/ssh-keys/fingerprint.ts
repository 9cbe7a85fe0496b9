import { createHash } from 'node:crypto';
import { AppError } from '../errors/app-error.ts';

export interface ParsedPublicKey {
  type: string;
  /** The wire-format key blob that the base64 field encodes. */
  blob: Buffer;
}

/** Parses an OpenSSH `authorized_keys` line: `<type> <base64 blob> [comment]`. */
export const parsePublicKey = (line: string): ParsedPublicKey => {
  const [type, b64] = line.trim().split(/\s+/);
  const blob = Buffer.from(b64 ?? '', 'base64');
  // The blob starts with its own type as an SSH string; a mismatch means a mangled key.
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (!type || len < 1 || blob.subarray(4, 4 + len).toString('latin1') !== type) {
    throw new AppError('SSH_PUBLIC_KEY_INVALID', 'not an OpenSSH public key line', false);
  }
  return { type, blob };
};

/** MD5 of the key blob as colon-separated hex, the fingerprint Hetzner stores; the comment is ignored. */
export const md5Fingerprint = (publicKey: string): string =>
  createHash('md5').update(parsePublicKey(publicKey).blob).digest('hex').match(/../g)!.join(':');

/** `SHA256:` and the unpadded base64 of the blob's SHA-256, exactly as `ssh-keygen -l` prints it. */
export const sha256Fingerprint = (publicKey: string): string =>
  `SHA256:${createHash('sha256').update(parsePublicKey(publicKey).blob).digest('base64').replace(/=+$/, '')}`;
