import { AppError } from '../errors/app-error.ts';

/** Hetzner's limit on `user_data` (docs/providers.md, "Endpoints"); cloud providers use the same order of magnitude. */
export const USER_DATA_MAX_BYTES = 32 * 1024;

/**
 * The `#cloud-config` that makes a new server boot with the host key we generated, so the first
 * SSH connection already verifies it (no trust on first use). Standard cloud-init keys:
 * `ssh_deletekeys` removes any image-baked keys, `ssh_genkeytypes: []` stops cloud-init from
 * generating others, and `ssh_keys` installs ours as /etc/ssh/ssh_host_ed25519_key{,.pub}.
 * The document holds a private key: it goes only into the create request, never into an event or a log.
 */
export const hostKeyCloudConfig = (hostKey: { publicKey: string; readonly privateKey: string }): string => {
  if (!/^ssh-ed25519 [A-Za-z0-9+/]+=*$/.test(hostKey.publicKey)) {
    throw new AppError('HOST_KEY_INVALID', 'the host public key is not an ssh-ed25519 key line without a comment', false);
  }
  const privateLines = hostKey.privateKey.trimEnd().split('\n');
  if (privateLines[0] !== '-----BEGIN OPENSSH PRIVATE KEY-----' || privateLines.some((l) => !/^[A-Za-z0-9+/=\- ]+$/.test(l))) {
    throw new AppError('HOST_KEY_INVALID', 'the host private key is not an OpenSSH private key', false);
  }
  const doc = [
    '#cloud-config',
    'ssh_deletekeys: true',
    'ssh_genkeytypes: []',
    'ssh_keys:',
    '  ed25519_private: |',
    ...privateLines.map((l) => `    ${l}`),
    // A JSON string is a valid YAML double-quoted scalar.
    `  ed25519_public: ${JSON.stringify(hostKey.publicKey)}`,
    '',
  ].join('\n');
  const bytes = Buffer.byteLength(doc, 'utf8');
  if (bytes > USER_DATA_MAX_BYTES) {
    throw new AppError('HOST_KEY_INVALID', `user_data of ${bytes} bytes exceeds the provider's limit of ${USER_DATA_MAX_BYTES}`, false);
  }
  return doc;
};
