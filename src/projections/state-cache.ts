import type { NodeState } from '../events/node-state.ts';

/**
 * Budget of the folded-state cache, in characters of the states' stored JSON. 10,000 nodes at rest
 * take 3.4 M characters and 5.3 MB of heap (bench:eventstore); mid-provision, with an active job
 * each, 14.9 M. The budget holds such a busy fleet: a replay that interleaves more nodes than fit
 * visits them round-robin, the worst case of least-recently-used, and every state would be re-read
 * and re-parsed from SQLite (ADR 0090). It caps the cache however many nodes there are.
 */
export const STATE_CACHE_BUDGET = 16_000_000;

/**
 * The folded states the projection keeps so that replay does not re-read and re-parse them every
 * batch: least recently used first out, bounded by the size of what it holds, not by a count, so
 * a fleet of large states cannot grow it past the budget.
 */
export class StateCache {
  private readonly entries = new Map<string, { state: NodeState; size: number }>();
  private used = 0;
  /** Whether a state ever left the cache: until then, a node that is not in it was never stored by its owner. */
  evicted = false;

  constructor(private readonly budget = STATE_CACHE_BUDGET) {}

  get(nodeId: string): NodeState | undefined {
    return this.entries.get(nodeId)?.state;
  }

  /** `size` is the length of the state's JSON, which the projection has at hand when it stores it. */
  set(nodeId: string, state: NodeState, size: number): void {
    this.delete(nodeId);
    this.entries.set(nodeId, { state, size });
    this.used += size;
    for (const [oldest, e] of this.entries) {
      if (this.used <= this.budget) break;
      this.entries.delete(oldest);
      this.used -= e.size;
      this.evicted = true;
    }
  }

  private delete(nodeId: string): void {
    const e = this.entries.get(nodeId);
    if (!e) return;
    this.entries.delete(nodeId);
    this.used -= e.size;
  }

  /** Characters held, for the bench and tests. */
  get size(): { nodes: number; chars: number } {
    return { nodes: this.entries.size, chars: this.used };
  }
}
