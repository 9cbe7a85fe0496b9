import { randomBytes } from 'node:crypto';
import { md5Fingerprint } from '../../ssh-keys/fingerprint.ts';
import type {
  CreateServerRequest,
  CreateSshKeyRequest,
  HetznerAction,
  HetznerServer,
  HetznerSshKey,
} from '../../providers/hetzner/hetzner-schemas.ts';
import { invalidLabel, isValidHostname } from '../../providers/hetzner/labels.ts';
import { USER_DATA_MAX_BYTES } from '../../providers/cloud-init-host-keys.ts';
import { matchesSelector, type SelectorTerm } from './label-selector.ts';
import { FaultQueue, type Operation } from './faults.ts';

/** An answer in Hetzner's error envelope. */
export class SimApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

interface SimAction {
  id: number;
  command: string;
  serverId: number;
  startedAt: number;
  /** Null: never finishes (to exercise action timeouts). */
  durationMs: number | null;
  error: { code: string; message: string } | null;
}

interface SimServer {
  id: number;
  name: string;
  labels: Record<string, string>;
  created: number;
  actionIds: number[];
  startAfterCreate: boolean;
  /** As sent in the create request; Hetzner never shows it again, only the admin snapshot does. */
  userData: string | null;
}

export interface SimulatorCounters {
  /** POST /servers calls that created a server (including those whose answer was then dropped). */
  serversCreated: number;
  sshKeysCreated: number;
  /** Calls per operation, counted before faults apply; 401/429 answers are not operations. */
  calls: Record<string, number>;
  rateLimited: number;
  unauthorized: number;
}

/** A server as Hetzner renders it, plus the user_data it was created with (a test node boots from it). */
export type SnapshotServer = HetznerServer & { userData: string | null };

export interface SimulatorSnapshot {
  servers: SnapshotServer[];
  sshKeys: HetznerSshKey[];
  counters: SimulatorCounters;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const invalidInput = (message: string, fields: string[]): SimApiError =>
  new SimApiError(422, 'invalid_input', message, { fields: fields.map((name) => ({ name, messages: [message] })) });
const uniqueness = (field: string): SimApiError =>
  new SimApiError(409, 'uniqueness_error', `${field} is already used`, { fields: [{ name: field }] });

/**
 * The simulator's model of one Hetzner project. Time comes from `now`, so action progress and
 * server status are derived from the clock rather than driven by timers.
 */
export class SimulatorState {
  readonly faults = new FaultQueue();
  actionDurationMs: number | null;
  #failNext: { remaining: number; code: string; message: string } | null = null;
  #nextId = 1;
  #keys = new Map<number, HetznerSshKey>();
  #servers = new Map<number, SimServer>();
  #actions = new Map<number, SimAction>();
  #counters: SimulatorCounters = { serversCreated: 0, sshKeysCreated: 0, calls: {}, rateLimited: 0, unauthorized: 0 };

  constructor(readonly options: { actionDurationMs: number | null; serverIpv4: string; now: () => number }) {
    this.actionDurationMs = options.actionDurationMs;
  }

  count(op: Operation): void {
    this.#counters.calls[op] = (this.#counters.calls[op] ?? 0) + 1;
  }

  countRejected(kind: 'rateLimited' | 'unauthorized'): void {
    this.#counters[kind] += 1;
  }

  /** The next `count` actions created end in `error` with this code. */
  failNextActions(count: number, code: string, message: string): void {
    this.#failNext = { remaining: count, code, message };
  }

  reset(): void {
    this.#keys.clear();
    this.#servers.clear();
    this.#actions.clear();
    this.faults.clear();
    this.#failNext = null;
    this.actionDurationMs = this.options.actionDurationMs;
    this.#counters = { serversCreated: 0, sshKeysCreated: 0, calls: {}, rateLimited: 0, unauthorized: 0 };
  }

  snapshot(): SimulatorSnapshot {
    return {
      servers: [...this.#servers.values()].map((s) => ({ ...this.serverView(s), userData: s.userData })),
      sshKeys: [...this.#keys.values()],
      counters: structuredClone(this.#counters),
    };
  }

  // --- SSH keys -----------------------------------------------------------

  listSshKeys(filter: { name?: string; fingerprint?: string; selector: SelectorTerm[] }): HetznerSshKey[] {
    return [...this.#keys.values()].filter(
      (k) =>
        (filter.name === undefined || k.name === filter.name) &&
        (filter.fingerprint === undefined || k.fingerprint === filter.fingerprint) &&
        matchesSelector(k.labels, filter.selector),
    );
  }

  createSshKey(req: CreateSshKeyRequest): HetznerSshKey {
    const labels = req.labels ?? {};
    const bad = invalidLabel(labels);
    if (bad) throw invalidInput(`invalid ${bad}`, ['labels']);
    let fingerprint: string;
    try {
      fingerprint = md5Fingerprint(req.public_key);
    } catch {
      throw invalidInput('invalid public key', ['public_key']);
    }
    const keys = [...this.#keys.values()];
    if (keys.some((k) => k.name === req.name)) throw uniqueness('name');
    // Hetzner reports a duplicate fingerprint against the public_key field.
    if (keys.some((k) => k.fingerprint === fingerprint)) throw uniqueness('public_key');
    const key: HetznerSshKey = {
      id: this.#nextId++, name: req.name, fingerprint, public_key: req.public_key, labels, created: iso(this.options.now()),
    };
    this.#keys.set(key.id, key);
    this.#counters.sshKeysCreated += 1;
    return key;
  }

  deleteSshKey(id: number): void {
    if (!this.#keys.delete(id)) throw new SimApiError(404, 'not_found', `ssh key ${id} not found`);
  }

  // --- Servers -------------------------------------------------------------

  listServers(filter: { name?: string; selector: SelectorTerm[] }): HetznerServer[] {
    return [...this.#servers.values()]
      .filter((s) => (filter.name === undefined || s.name === filter.name) && matchesSelector(s.labels, filter.selector))
      .map((s) => this.serverView(s));
  }

  getServer(id: number): HetznerServer {
    return this.serverView(this.#server(id));
  }

  createServer(req: CreateServerRequest): { server: HetznerServer; action: HetznerAction; next_actions: HetznerAction[]; root_password: string | null } {
    if (!isValidHostname(req.name) || req.name.length > 63) throw invalidInput('name must be a valid RFC 1123 hostname', ['name']);
    const labels = req.labels ?? {};
    const bad = invalidLabel(labels);
    if (bad) throw invalidInput(`invalid ${bad}`, ['labels']);
    const sshKeys = req.ssh_keys ?? [];
    for (const ref of sshKeys) {
      const known = [...this.#keys.values()].some((k) => k.id === ref || k.name === ref);
      if (!known) throw invalidInput(`ssh key ${ref} not found`, ['ssh_keys']);
    }
    // Hetzner: "Cloud-Init user data to use during Server creation. This field is limited to 32KiB."
    if (req.user_data !== undefined && Buffer.byteLength(req.user_data, 'utf8') > USER_DATA_MAX_BYTES) {
      throw invalidInput(`user_data is limited to ${USER_DATA_MAX_BYTES} bytes`, ['user_data']);
    }
    if ([...this.#servers.values()].some((s) => s.name === req.name)) throw uniqueness('name');

    const now = this.options.now();
    const server: SimServer = {
      id: this.#nextId++, name: req.name, labels, created: now, actionIds: [], startAfterCreate: req.start_after_create !== false,
      userData: req.user_data ?? null,
    };
    this.#servers.set(server.id, server);
    const create = this.#newAction('create_server', server.id, now);
    // start_server runs after create_server, so the status passes initializing → starting → running.
    const next = server.startAfterCreate ? [this.#newAction('start_server', server.id, now, 2)] : [];
    server.actionIds = [create.id, ...next.map((a) => a.id)];
    this.#counters.serversCreated += 1;
    return {
      server: this.serverView(server),
      action: this.actionView(create),
      next_actions: next.map((a) => this.actionView(a)),
      // Hetzner sets a root password only when no SSH key was given.
      root_password: sshKeys.length > 0 ? null : randomBytes(12).toString('base64url'),
    };
  }

  /** Mutations of a server wait for its running actions: Hetzner answers 423 locked meanwhile. */
  deleteServer(id: number): HetznerAction {
    const server = this.#server(id);
    if (this.serverActions(id).some((a) => a.status === 'running')) {
      throw new SimApiError(423, 'locked', 'server is locked: an action is running');
    }
    this.#servers.delete(id);
    return this.actionView(this.#newAction('delete_server', id, this.options.now()));
  }

  // --- Actions -------------------------------------------------------------

  /** Every action still running ends now (successfully, or with its injected error); returns how many. */
  finishActions(): number {
    const now = this.options.now();
    let finished = 0;
    for (const a of this.#actions.values()) {
      if (this.actionView(a).status !== 'running') continue;
      a.durationMs = Math.max(0, now - a.startedAt);
      finished += 1;
    }
    return finished;
  }

  getAction(id: number): HetznerAction {
    const action = this.#actions.get(id);
    if (!action) throw new SimApiError(404, 'not_found', `action ${id} not found`);
    return this.actionView(action);
  }

  getActions(ids: readonly number[]): HetznerAction[] {
    return ids.flatMap((id) => {
      const a = this.#actions.get(id);
      return a ? [this.actionView(a)] : [];
    });
  }

  serverActions(serverId: number): HetznerAction[] {
    return [...this.#actions.values()].filter((a) => a.serverId === serverId).map((a) => this.actionView(a));
  }

  // --- Views: derived from the clock --------------------------------------

  actionView(a: SimAction): HetznerAction {
    const elapsed = this.options.now() - a.startedAt;
    const finished = a.durationMs !== null && elapsed >= a.durationMs;
    const progress = finished ? 100 : a.durationMs === null ? 0 : Math.floor((elapsed / a.durationMs) * 100);
    return {
      id: a.id,
      command: a.command,
      status: finished ? (a.error ? 'error' : 'success') : 'running',
      progress,
      started: iso(a.startedAt),
      finished: finished ? iso(a.startedAt + (a.durationMs ?? 0)) : null,
      error: finished ? a.error : null,
      resources: [{ id: a.serverId, type: 'server' }],
    };
  }

  serverView(s: SimServer): HetznerServer {
    const [create, start] = s.actionIds.map((id) => this.actionView(this.#actions.get(id)!));
    const status: HetznerServer['status'] =
      create?.status === 'running' ? 'initializing'
        : create?.status === 'error' || start?.status === 'error' || !s.startAfterCreate ? 'off'
          : start?.status === 'running' ? 'starting'
            : 'running';
    return {
      id: s.id,
      name: s.name,
      status,
      created: iso(s.created),
      labels: s.labels,
      public_net: { ipv4: { ip: this.options.serverIpv4 }, ipv6: null },
    };
  }

  #server(id: number): SimServer {
    const s = this.#servers.get(id);
    if (!s) throw new SimApiError(404, 'not_found', `server ${id} not found`);
    return s;
  }

  #newAction(command: string, serverId: number, now: number, durationFactor = 1): SimAction {
    let error: SimAction['error'] = null;
    if (this.#failNext && this.#failNext.remaining > 0) {
      this.#failNext.remaining -= 1;
      error = { code: this.#failNext.code, message: this.#failNext.message };
    }
    const action: SimAction = { id: this.#nextId++, command, serverId, startedAt: now, durationMs: this.actionDurationMs === null ? null : this.actionDurationMs * durationFactor, error };
    this.#actions.set(action.id, action);
    return action;
  }
}
