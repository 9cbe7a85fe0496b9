import type { Logger } from '../../logging/logger.ts';
import type { ProviderPort } from '../provider-port.ts';
import { HetznerClient } from './hetzner-client.ts';
import { DEFAULT_LABELS_PREFIX, MANAGED_BY_VALUE, ownershipLabelKeys, ownershipLabels } from './labels.ts';
import { createServer, findServer, getActions, getServer, type ServerDeps } from './server-lifecycle.ts';
import { ensureSshKey } from './ssh-key.ts';

export interface HetznerProviderOptions {
  /** E.g. from hetznerConfigFromEnv; tests pass the simulator's URL. */
  endpoint: string;
  token: string;
  timeoutMs: number;
  logger: Logger;
  /** Label key prefix for ownership labels (`<prefix>/node-id` …). Default `pressluft`. */
  labelsPrefix?: string;
  /** Name of our one SSH key in the project. Default `pressluft-control-plane`. */
  sshKeyName?: string;
  /** Bounds for the GET-only wait on 429; see HetznerClientOptions. */
  maxRateLimitWaitMs?: number;
}

export interface HetznerProvider extends ProviderPort {
  /** The underlying client, for callers that need calls outside the port (e.g. tests, cleanup). */
  readonly client: HetznerClient;
}

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
  const deps: ServerDeps = { client, keys, logger };
  const sshKeyDeps = {
    client,
    keyName: options.sshKeyName ?? 'pressluft-control-plane',
    labels: { [keys.managedBy]: MANAGED_BY_VALUE },
    logger,
  };
  return {
    name: 'hetzner',
    client,
    ensureSshKey: (publicKey) => ensureSshKey(sshKeyDeps, publicKey),
    findServer: (nodeId, name) => findServer(deps, nodeId, name),
    createServer: (spec) => createServer(deps, spec),
    getActions: (ids) => getActions(deps, ids),
    getServer: (id) => getServer(deps, id),
    serverLabels: (nodeId, jobId) => ownershipLabels(keys, nodeId, jobId),
  };
};
