import type { Logger } from '../../logging/logger.ts';
import { ProviderError, type ActionState, type CreatedServer, type ProviderServer, type ServerSpec } from '../provider-port.ts';
import { USER_DATA_MAX_BYTES } from '../cloud-init-host-keys.ts';
import type { HetznerClient } from './hetzner-client.ts';
import { isHetznerApiError } from './hetzner-error.ts';
import type { CreateServerResponse, HetznerAction, HetznerServer } from './hetzner-schemas.ts';
import { equalitySelector } from './label-selector.ts';
import { invalidLabel, isOwnedBy, isValidHostname, nodeSelectorLabels, ownershipLabels, type OwnershipLabelKeys } from './labels.ts';

export interface ServerDeps {
  client: HetznerClient;
  keys: OwnershipLabelKeys;
  logger: Logger;
  /** Action lookups; the provider passes its coalescing ActionPoller. */
  pollActions: (ids: readonly number[]) => Promise<HetznerAction[]>;
  /** Sees every create answer, so the provider can keep what it already knows about the server. */
  onCreated?: (res: CreateServerResponse) => void;
}

/** A create yields these two actions (start_after_create); an adopted server is waited on through them. */
const CREATE_COMMANDS = new Set(['create_server', 'start_server']);

export const toProviderServer = (s: HetznerServer): ProviderServer => ({
  serverId: String(s.id),
  name: s.name,
  status: s.status,
  ipv4: s.public_net.ipv4?.ip ?? null,
  ipv6: s.public_net.ipv6?.ip ?? null,
  labels: s.labels,
});

const toActionState = (a: HetznerAction): ActionState => ({
  actionId: String(a.id),
  status: a.status,
  progress: a.progress,
  error: a.error,
});

const invalid = (message: string, details?: Record<string, unknown>): ProviderError =>
  new ProviderError('PROVIDER_INVALID_REQUEST', message, false, details);

const numericId = (id: string, what: string): number => {
  if (!/^[1-9]\d{0,15}$/.test(id)) throw invalid(`${what} '${id}' is not a Hetzner id`);
  return Number(id);
};

const nameConflict = (name: string, s: HetznerServer): ProviderError =>
  new ProviderError(
    'PROVIDER_SERVER_NAME_CONFLICT',
    `server name '${name}' is taken by server ${s.id}, whose labels do not prove it is ours`,
    false,
    { name, serverId: String(s.id), labels: s.labels },
  );

const byName = async (deps: ServerDeps, name: string): Promise<HetznerServer | undefined> =>
  (await deps.client.listServers({ name }))[0];

/**
 * Looks up by ownership label first (the name may have changed hands), then by name.
 * A name held by a server without our labels is a conflict, never a match.
 */
export const findServer = async (deps: ServerDeps, nodeId: string, name: string): Promise<ProviderServer | null> => {
  const labelled = await deps.client.listServers({ label_selector: equalitySelector(nodeSelectorLabels(deps.keys, nodeId)) });
  if (labelled.length > 1) {
    // The invariant is one server per node; pick deterministically and shout, a human must remove the orphan.
    deps.logger.error({ nodeId, serverIds: labelled.map((s) => s.id) }, 'more than one server carries this node id');
  }
  const ours = [...labelled].sort((a, b) => a.id - b.id)[0];
  if (ours) return toProviderServer(ours);

  const named = await byName(deps, name);
  if (!named) return null;
  if (!isOwnedBy(named.labels, deps.keys, nodeId)) throw nameConflict(name, named);
  return toProviderServer(named);
};

/** Actions an adopted server is still waiting on: we lost the create response, so we ask the server. */
const adopt = async (deps: ServerDeps, server: ProviderServer): Promise<CreatedServer> => {
  const actions = await deps.client.listServerActions(numericId(server.serverId, 'server id'));
  deps.logger.info({ serverId: server.serverId, name: server.name }, 'adopting existing server');
  return {
    serverId: server.serverId,
    actionIds: actions.filter((a) => CREATE_COMMANDS.has(a.command)).map((a) => String(a.id)),
    adopted: true,
  };
};

/**
 * Creates the node's server at most once. Hetzner has no idempotency key; the deterministic name
 * (unique per project) plus our ownership labels are the guard, so we look up before every POST
 * and, on uniqueness_error, adopt only a server whose labels prove it is ours.
 */
export const createServer = async (deps: ServerDeps, spec: ServerSpec): Promise<CreatedServer> => {
  if (!isValidHostname(spec.name) || spec.name.length > 63) throw invalid(`server name '${spec.name}' is not an RFC 1123 hostname`);
  const labels = ownershipLabels(deps.keys, spec.nodeId, spec.jobId);
  const bad = invalidLabel(labels);
  if (bad) throw invalid(`invalid ${bad}`);
  const sshKeyId = numericId(spec.sshKeyId, 'SSH key id');
  if (spec.userData !== undefined && Buffer.byteLength(spec.userData, 'utf8') > USER_DATA_MAX_BYTES) {
    throw invalid(`user_data exceeds Hetzner's limit of ${USER_DATA_MAX_BYTES} bytes`);
  }

  // Only when no earlier attempt can have created the server may the lookups be skipped.
  if (!spec.knownAbsent) {
    const existing = await findServer(deps, spec.nodeId, spec.name);
    if (existing) return adopt(deps, existing);
  }

  try {
    // A 429 on this POST is sent again by the client itself, without our lookups (HetznerClient.request).
    const res = await deps.client.createServer({
      name: spec.name,
      server_type: spec.serverType,
      image: spec.image,
      location: spec.location,
      // Only our key: Hetzner then sets no root password (root_password is null).
      ssh_keys: [sshKeyId],
      labels,
      ...(spec.userData !== undefined ? { user_data: spec.userData } : {}),
      start_after_create: true,
    });
    deps.logger.info({ serverId: res.server.id, name: spec.name, actionId: res.action.id }, 'created server');
    deps.onCreated?.(res);
    return {
      serverId: String(res.server.id),
      actionIds: [res.action, ...res.next_actions].map((a) => String(a.id)),
      adopted: false,
    };
  } catch (e) {
    if (!isHetznerApiError(e) || e.apiCode !== 'uniqueness_error') throw e;
    const named = await byName(deps, spec.name);
    if (named && isOwnedBy(named.labels, deps.keys, spec.nodeId)) return adopt(deps, toProviderServer(named));
    if (named) throw nameConflict(spec.name, named);
    // Taken a moment ago, gone now (deleted meanwhile): the next attempt looks up and creates.
    throw new ProviderError('PROVIDER_UNAVAILABLE', `server name '${spec.name}' was reported taken but no such server exists; retry`, true, { ...e.details });
  }
};

export const getServer = async (deps: ServerDeps, id: string): Promise<ProviderServer> => {
  try {
    return toProviderServer(await deps.client.getServer(numericId(id, 'server id')));
  } catch (e) {
    if (isHetznerApiError(e) && e.httpStatus === 404) {
      throw new ProviderError('PROVIDER_SERVER_NOT_FOUND', `Hetzner server ${id} does not exist`, false, { ...e.details });
    }
    throw e;
  }
};

/** Statuses in the order asked. An id Hetzner does not know is a caller bug, not a pending action. */
export const getActions = async (deps: ServerDeps, ids: readonly string[]): Promise<ActionState[]> => {
  const actions = await deps.pollActions(ids.map((id) => numericId(id, 'action id')));
  const byId = new Map(actions.map((a) => [String(a.id), a]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length > 0) throw invalid(`Hetzner does not know action ids ${missing.join(', ')}`, { missing });
  return ids.map((id) => toActionState(byId.get(id)!));
};
