import type { EventEnvelope } from '../events/envelope.ts';
import type { StoredDecision } from '../events/event-codec.ts';
import { evolve, initialNodeState, type NodeState } from '../events/node-state.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import { StaleRead } from '../eventstore/event-store-errors.ts';

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
 * The default budget of one repository's state cache, in bytes of the states' JSON. A state grows
 * with its jobs (each keeps up to 10 KB of Ansible output), so a count of states would bound nothing.
 * Its JSON length is close to its heap size (a first provision: 1.4 KB of JSON, about 1.4 KB of heap).
 */
export const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;

interface CachedNode extends LoadedNode {
  bytes: number;
}

/**
 * Loads node aggregates from their streams. A cache keeps the folded state per node, so a load
 * after a new event reads only what is new (one direct get per message). The cache is bounded by
 * the bytes of the states it holds, least recently used out first. It is safe because a state at a
 * version is fully determined by the log, and states are never mutated (evolve makes new ones).
 */
export class NodeRepository {
  private readonly cache = new Map<string, CachedNode>();
  private cachedBytes = 0;

  constructor(
    readonly store: EventStore,
    private readonly maxCachedBytes = DEFAULT_CACHE_BYTES,
  ) {}

  async load(nodeId: string, upTo?: number): Promise<LoadedNode> {
    const version = upTo ?? (await this.store.version(nodeId));
    const base = this.cached(nodeId, version) ?? { state: initialNodeState(), version: 0 };
    if (base.version === version) return base;
    const decisions = await this.store.readStream(nodeId, { after: base.version, upTo: version });
    // With replicas, a direct get may come from a follower a few messages behind: a short read is retried, not folded as the whole node.
    const last = decisions.at(-1)?.position ?? base.version;
    if (upTo === undefined && last !== version) throw new StaleRead(nodeId, version, last);
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
    const old = this.cache.get(nodeId);
    if (old && old.version >= loaded.version) return;
    this.drop(nodeId);
    const bytes = JSON.stringify(loaded.state).length;
    // A state larger than the whole budget is not kept: it would evict everything else.
    if (bytes > this.maxCachedBytes) return;
    this.cache.set(nodeId, { state: loaded.state, version: loaded.version, bytes });
    this.cachedBytes += bytes;
    for (const oldest of this.cache.keys()) {
      if (this.cachedBytes <= this.maxCachedBytes) break;
      this.drop(oldest);
    }
  }

  /** What the cache holds now: entries and bytes of state JSON. */
  get cacheSize(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cachedBytes };
  }

  /** The cached state at or before `version`, made the most recently used. */
  private cached(nodeId: string, version: number): LoadedNode | null {
    const c = this.cache.get(nodeId);
    if (!c || c.version > version) return null;
    this.cache.delete(nodeId);
    this.cache.set(nodeId, c);
    return { state: c.state, version: c.version };
  }

  private drop(nodeId: string): void {
    const c = this.cache.get(nodeId);
    if (!c) return;
    this.cache.delete(nodeId);
    this.cachedBytes -= c.bytes;
  }
}
