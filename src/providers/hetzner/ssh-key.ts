import type { Logger } from '../../logging/logger.ts';
import { md5Fingerprint } from '../../ssh-keys/fingerprint.ts';
import { ProviderError, type SshKeyRef } from '../provider-port.ts';
import type { HetznerClient } from './hetzner-client.ts';
import { isHetznerApiError } from './hetzner-error.ts';
import type { HetznerSshKey } from './hetzner-schemas.ts';

export interface SshKeyDeps {
  client: HetznerClient;
  /** Deterministic: the control plane owns exactly one key, so the name never changes. */
  keyName: string;
  labels: Record<string, string>;
  logger: Logger;
}

const ref = (key: HetznerSshKey): SshKeyRef => ({ keyId: String(key.id), fingerprint: key.fingerprint });

const conflict = (keyName: string, theirs: HetznerSshKey, ours: string): ProviderError =>
  new ProviderError(
    'PROVIDER_SSH_KEY_CONFLICT',
    `Hetzner SSH key '${keyName}' (id ${theirs.id}) holds fingerprint ${theirs.fingerprint}, not ours (${ours}); remove or rename it`,
    false,
    { keyName, keyId: String(theirs.id), theirFingerprint: theirs.fingerprint, ourFingerprint: ours },
  );

/**
 * Registers our public key once per project. Both the name and the fingerprint are unique in a
 * project, so: look up by fingerprint, create if absent, and on uniqueness_error look up again.
 * A key with our name and another fingerprint is a conflict: never fall back to another key or a root password.
 */
export const ensureSshKey = async (deps: SshKeyDeps, publicKey: string): Promise<SshKeyRef> => {
  const { client, keyName } = deps;
  const fingerprint = md5Fingerprint(publicKey);
  const byFingerprint = async () => (await client.listSshKeys({ fingerprint }))[0];

  const existing = await byFingerprint();
  if (existing) return ref(existing);

  try {
    const created = await client.createSshKey({ name: keyName, public_key: publicKey.trim(), labels: deps.labels });
    deps.logger.info({ keyId: created.id, fingerprint }, 'registered SSH key with Hetzner');
    return ref(created);
  } catch (e) {
    if (!isHetznerApiError(e)) throw e;
    if (e.apiCode === 'uniqueness_error') {
      // Someone (another worker, an earlier uncertain POST) registered it meanwhile, or the name is taken.
      const raced = await byFingerprint();
      if (raced) return ref(raced);
      const sameName = (await client.listSshKeys({ name: keyName }))[0];
      if (sameName) throw conflict(keyName, sameName, fingerprint);
      throw new ProviderError('PROVIDER_SSH_KEY_REGISTRATION_FAILED', `Hetzner reported a duplicate SSH key but none matches name '${keyName}' or fingerprint ${fingerprint}`, true, { ...e.details });
    }
    if (e.code === 'PROVIDER_INVALID_REQUEST') {
      throw new ProviderError('PROVIDER_SSH_KEY_REGISTRATION_FAILED', `Hetzner refused our SSH key: ${e.apiMessage}`, false, { ...e.details });
    }
    throw e;
  }
};
