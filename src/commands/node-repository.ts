import type { EventEnvelope } from '../events/envelope.ts';
import type { StoredDecision } from '../events/event-codec.ts';
import { evolve, initialNodeState, type NodeState } from '../events/node-state.ts';
import type { EventStore } from '../eventstore/event-store.ts';

export interface LoadedNode {
  state: NodeState;
  /** Position of the stream's last message: the expected version of the next append. */
  version: number;
}

export const foldDecisions = (decisions: readonly StoredDecision[], from: NodeState = initialNodeState()): NodeState => {
  let s = from;
  for (const d of decisions) for (const e of d.events) s = evolve(s, e, e.occurredAt);
  return s;
};

/**
 * Loads node aggregates from their streams. A small cache keeps the folded state per node,
 * so a load after a new event reads only what is new (one direct get per message).
 * The cache is safe because a state at a version is fully determined by the log.
 */
export class NodeRepository {
  private readonly cache = new Map<string, LoadedNode>();

  constructor(
    readonly store: EventStore,
    private readonly maxCached = 5000,
  ) {}

  async load(nodeId: string, upTo?: number): Promise<LoadedNode> {
    const version = upTo ?? (await this.store.version(nodeId));
    const cached = this.cache.get(nodeId);
    const base = cached && cached.version <= version ? cached : { state: initialNodeState(), version: 0 };
    if (base.version === version) return base;
    const decisions = await this.store.readStream(nodeId, { after: base.version, upTo: version });
    const loaded = { state: foldDecisions(decisions, base.state), version };
    if (upTo === undefined) this.remember(nodeId, loaded);
    return loaded;
  }

  /** Every envelope of one node with its position: the auditor's view. */
  async history(nodeId: string, o: { after?: number; upTo?: number } = {}): Promise<Array<EventEnvelope & { position: number }>> {
    const decisions = await this.store.readStream(nodeId, o);
    return decisions.flatMap((d) => d.events.map((e) => ({ ...e, position: d.position })));
  }

  /** Records the state a successful append produced, so the next load needs no read. */
  remember(nodeId: string, loaded: LoadedNode): void {
    const cached = this.cache.get(nodeId);
    if (cached && cached.version >= loaded.version) return;
    this.cache.delete(nodeId);
    this.cache.set(nodeId, loaded);
    if (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}
