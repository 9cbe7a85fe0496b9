import { generateKeyPairSync, randomBytes } from 'node:crypto';

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

export interface OpenSshKeyPair {
  /** `ssh-ed25519 <base64> <comment>`, as in authorized_keys. */
  publicKey: string;
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` …, unencrypted, usable with `ssh -i`. */
  privateKey: string;
}

export const generateOpenSshEd25519 = (comment: string): OpenSshKeyPair => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new Error('node:crypto returned a malformed ed25519 key');

  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  // Two equal random check words let ssh detect a wrong passphrase; with cipher "none" they are still required.
  const check = randomBytes(4).readUInt32BE(0);
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
  return {
    publicKey: `${KEY_TYPE} ${publicBlob.toString('base64')} ${comment}`,
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
  };
};
