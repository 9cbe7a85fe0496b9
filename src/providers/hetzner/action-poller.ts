import type { HetznerAction } from './hetzner-schemas.ts';

interface Waiter {
  ids: readonly number[];
  resolve: (actions: HetznerAction[]) => void;
  reject: (e: unknown) => void;
}

/**
 * Coalesces action polls of every in-flight node into one `GET /actions?id=…&id=…` per tick
 * (the client splits it into pages of 50 ids). While a list request waits for the rate limit or is in
 * flight, new polls gather for the next one, so batches grow exactly when requests are scarce.
 */
export class ActionPoller {
  #waiting: Waiter[] = [];
  #scheduled = false;
  #busy = false;

  constructor(
    private readonly fetchActions: (ids: readonly number[]) => Promise<HetznerAction[]>,
    /** How long the first poll of a tick waits for others to join it. */
    private readonly windowMs = 25,
  ) {}

  /** The actions Hetzner knows among `ids`; an unknown id is simply absent, as in Hetzner's answer. */
  poll(ids: readonly number[]): Promise<HetznerAction[]> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ ids, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#busy || this.#waiting.length === 0) return;
    this.#scheduled = true;
    setTimeout(() => void this.#flush(), this.windowMs);
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    this.#busy = true;
    const batch = this.#waiting;
    this.#waiting = [];
    try {
      const ids = [...new Set(batch.flatMap((w) => w.ids))];
      const byId = new Map((await this.fetchActions(ids)).map((a) => [a.id, a]));
      for (const w of batch) w.resolve(w.ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : [])));
    } catch (e) {
      for (const w of batch) w.reject(e);
    } finally {
      this.#busy = false;
      this.#schedule();
    }
  }
}
