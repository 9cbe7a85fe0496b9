import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';

/**
 * Ed25519 keys in OpenSSH's own formats, built from node:crypto so that no ssh-keygen binary
 * or plaintext temp file is needed. Layout: PROTOCOL.key in OpenSSH's source (openssh-key-v1).
 */
const sshString = (data: Buffer | string): Buffer => {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};
const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

const KEY_TYPE = 'ssh-ed25519';
/** DER of a PKCS#8 ed25519 private key up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface OpenSshKeyPair {
  /** `ssh-ed25519 <base64> <comment>`, as in authorized_keys. */
  publicKey: string;
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` …, unencrypted, usable with `ssh -i`. */
  privateKey: string;
}

/**
 * The OpenSSH encoding of an ed25519 key from its 32-byte seed. The check word is taken from the
 * seed, so the same seed always yields the same text (workers that derive a key agree byte for byte).
 */
export const openSshEd25519FromSeed = (seed: Buffer, comment: string): OpenSshKeyPair => {
  if (seed.length !== 32) throw new Error('an ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '', 'base64url');
  if (pub.length !== 32) throw new Error('node:crypto returned a malformed ed25519 key');

  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  // Two equal check words let ssh detect a wrong passphrase; with cipher "none" they are still required.
  const check = createHash('sha256').update('openssh-check\0').update(seed).digest().readUInt32BE(0);
  const unpadded = Buffer.concat([
    uint32(check), uint32(check),
    sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment),
  ]);
  const padLength = (8 - (unpadded.length % 8)) % 8;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'), sshString('none'), sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  const publicLine = `${KEY_TYPE} ${publicBlob.toString('base64')}`;
  return {
    publicKey: comment ? `${publicLine} ${comment}` : publicLine,
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
  };
};

export const generateOpenSshEd25519 = (comment: string): OpenSshKeyPair => openSshEd25519FromSeed(randomBytes(32), comment);
