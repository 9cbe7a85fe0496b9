import type { Logger } from '../../logging/logger.ts';
import { md5Fingerprint } from '../../ssh-keys/fingerprint.ts';
import type { ProviderPort, ServerSpec, SshKeyRef } from '../provider-port.ts';
import { ActionPoller } from './action-poller.ts';
import { CreatedServers } from './created-servers.ts';
import { HetznerClient } from './hetzner-client.ts';
import { isHetznerApiError } from './hetzner-error.ts';
import { DEFAULT_LABELS_PREFIX, MANAGED_BY_VALUE, ownershipLabelKeys, ownershipLabels } from './labels.ts';
import { createServer, findServer, getActions, getServer, type ServerDeps } from './server-lifecycle.ts';
import { ensureSshKey } from './ssh-key.ts';

export interface HetznerProviderOptions {
  /** From config.hetzner (HCLOUD_ENDPOINT, HCLOUD_TOKEN, HCLOUD_TIMEOUT_MS), or the simulator's URL and token. */
  endpoint: string;
  token: string;
  timeoutMs: number;
  logger: Logger;
  /** Label key prefix for ownership labels (`<prefix>/node-id` …). Default `pressluft`. */
  labelsPrefix?: string;
  /** Name of our one SSH key in the project. Default `pressluft-control-plane`. */
  sshKeyName?: string;
  /** Bound on one wait for a rate-limit token; see HetznerClientOptions. */
  maxRateLimitWaitMs?: number;
  /** How long the first action poll of a tick waits for others to join its list request. Default 25 ms. */
  actionPollWindowMs?: number;
}

export interface HetznerProvider extends ProviderPort {
  /** The underlying client, for callers that need calls outside the port (e.g. tests, cleanup). */
  readonly client: HetznerClient;
}

/** Hetzner's answer when a server is created with an SSH key id it does not know (any more). */
const isMissingSshKey = (e: unknown): boolean =>
  isHetznerApiError(e) &&
  (e.httpStatus === 404 || (e.apiCode === 'invalid_input' && /ssh.?key/i.test(`${e.apiMessage} ${JSON.stringify(e.apiDetails)}`)));

/**
 * One provider, one client, one rate-limit budget, one action poller and one SSH key cache per process:
 * the control plane creates it once and every saga shares it.
 */
export const createHetznerProvider = (options: HetznerProviderOptions): HetznerProvider => {
  const logger = options.logger.child({ provider: 'hetzner' });
  const client = new HetznerClient({
    endpoint: options.endpoint,
    token: options.token,
    timeoutMs: options.timeoutMs,
    logger,
    maxRateLimitWaitMs: options.maxRateLimitWaitMs,
  });
  const keys = ownershipLabelKeys(options.labelsPrefix ?? DEFAULT_LABELS_PREFIX);
  const created = new CreatedServers();
  const poller = new ActionPoller((ids) => client.getActions(ids), options.actionPollWindowMs);
  const deps: ServerDeps = {
    client,
    keys,
    logger,
    pollActions: async (ids) => {
      const actions = await poller.poll(ids);
      created.observe(actions);
      return actions;
    },
    onCreated: (res) => created.remember(res),
  };
  const sshKeyDeps = {
    client,
    keyName: options.sshKeyName ?? 'pressluft-control-plane',
    labels: { [keys.managedBy]: MANAGED_BY_VALUE },
    logger,
  };

  // The key's id per fingerprint, checked with Hetzner once per process (concurrent first callers share
  // the check) and again when a create says the id is gone.
  const sshKeys = new Map<string, { publicKey: string; ref: Promise<SshKeyRef> }>();
  const cachedSshKey = (publicKey: string): Promise<SshKeyRef> => {
    const fingerprint = md5Fingerprint(publicKey);
    const hit = sshKeys.get(fingerprint);
    if (hit) return hit.ref;
    const ref = ensureSshKey(sshKeyDeps, publicKey);
    sshKeys.set(fingerprint, { publicKey, ref });
    // A failed check is not cached: the next caller asks Hetzner again.
    ref.catch(() => sshKeys.get(fingerprint)?.ref === ref && sshKeys.delete(fingerprint));
    return ref;
  };
  const knownKeys = async () =>
    (await Promise.allSettled([...sshKeys].map(async ([fp, k]) => ({ fp, publicKey: k.publicKey, ref: await k.ref }))))
      .flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));

  const createWithKeyRecheck = async (spec: ServerSpec) => {
    try {
      return await createServer(deps, spec);
    } catch (e) {
      if (!isMissingSshKey(e)) throw e;
      const known = await knownKeys();
      const stale = known.find((k) => k.ref.keyId === spec.sshKeyId);
      let keyId: string;
      if (stale) {
        logger.warn({ keyId: spec.sshKeyId }, 'cached SSH key id is gone at Hetzner; checking the key again');
        if (sshKeys.get(stale.fp)?.publicKey === stale.publicKey) sshKeys.delete(stale.fp);
        keyId = (await cachedSshKey(stale.publicKey)).keyId;
      } else {
        // The saga recorded an id we have since replaced: the process owns one key, use its current id.
        if (known.length !== 1 || known[0]!.ref.keyId === spec.sshKeyId) throw e;
        keyId = known[0]!.ref.keyId;
      }
      return createServer(deps, { ...spec, sshKeyId: keyId });
    }
  };

  return {
    name: 'hetzner',
    client,
    ensureSshKey: cachedSshKey,
    findServer: (nodeId, name) => findServer(deps, nodeId, name),
    createServer: createWithKeyRecheck,
    getActions: (ids) => getActions(deps, ids),
    getServer: async (id) => created.running(id) ?? getServer(deps, id),
    serverLabels: (nodeId, jobId) => ownershipLabels(keys, nodeId, jobId),
  };
};
