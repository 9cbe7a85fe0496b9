import type { ProviderServer } from '../provider-port.ts';
import type { CreateServerResponse, HetznerAction } from './hetzner-schemas.ts';
import { toProviderServer } from './server-lifecycle.ts';

/**
 * Bounded by memory, not by count: 12 MB holds about 16,000 typical entries (~750 bytes each), so
 * every node of a 10,000-node fleet in flight at once fits. An evicted entry only costs one GET /servers/{id}.
 */
export const CREATED_SERVERS_BUDGET_BYTES = 12 * 1024 * 1024;
/** Map slots, the entry object, its Set and arrays: roughly what V8 spends besides the strings. */
const ENTRY_OVERHEAD_BYTES = 300;
const BYTES_PER_ACTION = 80;

interface Entry {
  server: ProviderServer;
  actionIds: number[];
  /** Actions not yet seen succeed. */
  pending: Set<number>;
  bytes: number;
}

/** An estimate of an entry's heap footprint: V8 keeps ASCII strings at a byte a character, plus fixed overheads. */
const estimateBytes = (server: ProviderServer, actionCount: number): number =>
  ENTRY_OVERHEAD_BYTES + actionCount * BYTES_PER_ACTION + JSON.stringify(server).length;

/**
 * Server details taken from answers we already have: the create answer holds the id, name, labels and
 * public addresses, which do not change while the server boots; once its create_server and start_server
 * actions were seen succeed, Hetzner's status is `running`. So the saga's first getServer after the
 * actions needs no request. Anything else (adopted servers, a failed action, an evicted entry) is fetched.
 */
export class CreatedServers {
  #byServer = new Map<string, Entry>();
  #serverOfAction = new Map<number, string>();
  #bytes = 0;

  constructor(private readonly budgetBytes = CREATED_SERVERS_BUDGET_BYTES) {}

  /** Entries held and their estimated bytes. */
  get held(): { entries: number; bytes: number } {
    return { entries: this.#byServer.size, bytes: this.#bytes };
  }

  remember(res: CreateServerResponse): void {
    const serverId = String(res.server.id);
    this.forget(serverId);
    const actions = [res.action, ...res.next_actions];
    const server = toProviderServer(res.server);
    const bytes = estimateBytes(server, actions.length);
    this.#byServer.set(serverId, { server, actionIds: actions.map((a) => a.id), pending: new Set(actions.map((a) => a.id)), bytes });
    this.#bytes += bytes;
    for (const a of actions) this.#serverOfAction.set(a.id, serverId);
    // Oldest first: the nodes longest in flight are the likeliest to have been read already.
    while (this.#bytes > this.budgetBytes && this.#byServer.size > 0) this.forget(this.#byServer.keys().next().value!);
  }

  observe(actions: readonly HetznerAction[]): void {
    for (const a of actions) {
      const serverId = this.#serverOfAction.get(a.id);
      if (serverId === undefined || a.status !== 'success') continue;
      this.#byServer.get(serverId)?.pending.delete(a.id);
    }
  }

  /**
   * The server as it must be right after its actions succeeded, or null when only Hetzner can say.
   * Answered once: later reads (another attempt, a re-provision) must see the server as it is then.
   */
  running(serverId: string): ProviderServer | null {
    const e = this.#byServer.get(serverId);
    if (!e || e.pending.size > 0) return null;
    this.forget(serverId);
    return { ...e.server, status: 'running' };
  }

  forget(serverId: string): void {
    const e = this.#byServer.get(serverId);
    if (!e) return;
    for (const id of e.actionIds) this.#serverOfAction.delete(id);
    this.#byServer.delete(serverId);
    this.#bytes -= e.bytes;
  }
}
