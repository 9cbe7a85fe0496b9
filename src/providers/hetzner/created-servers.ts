import type { ProviderServer } from '../provider-port.ts';
import type { CreateServerResponse, HetznerAction } from './hetzner-schemas.ts';
import { toProviderServer } from './server-lifecycle.ts';

/** Enough for every node in flight at once; an evicted entry only costs one GET /servers/{id}. */
const MAX_ENTRIES = 2_000;

interface Entry {
  server: ProviderServer;
  actionIds: number[];
  /** Actions not yet seen succeed. */
  pending: Set<number>;
}

/**
 * Server details taken from answers we already have: the create answer holds the id, name, labels and
 * public addresses, which do not change while the server boots; once its create_server and start_server
 * actions were seen succeed, Hetzner's status is `running`. So the saga's first getServer after the
 * actions needs no request. Anything else (adopted servers, a failed action, an evicted entry) is fetched.
 */
export class CreatedServers {
  #byServer = new Map<string, Entry>();
  #serverOfAction = new Map<number, string>();

  remember(res: CreateServerResponse): void {
    const serverId = String(res.server.id);
    const actions = [res.action, ...res.next_actions];
    this.#byServer.set(serverId, { server: toProviderServer(res.server), actionIds: actions.map((a) => a.id), pending: new Set(actions.map((a) => a.id)) });
    for (const a of actions) this.#serverOfAction.set(a.id, serverId);
    if (this.#byServer.size > MAX_ENTRIES) this.forget(this.#byServer.keys().next().value!);
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
    for (const id of this.#byServer.get(serverId)?.actionIds ?? []) this.#serverOfAction.delete(id);
    this.#byServer.delete(serverId);
  }
}
