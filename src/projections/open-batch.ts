import type { NodeState } from '../events/node-state.ts';
import type { UndecodableMessage } from './projected-message.ts';

/** A node touched by a batch: its folded state (and its stored JSON's size), and per job the last position and time that changed it. */
export interface Touched {
  state: NodeState;
  size: number;
  jobs: Map<string, { position: number; at: string }>;
  position: number;
  at: string;
}

/**
 * Messages folded but not yet committed: per node the state folded so far, so each node's rows and
 * state are written once per commit however many of its messages the batch holds. It lives only in
 * memory until `NodeProjection.commit` writes it with the checkpoint in one transaction; a batch
 * that is dropped (a rollback, a restart) leaves nothing behind. Its memory is bounded by the
 * messages it may hold (the projector's batchSize): at most one state per message.
 */
export class OpenBatch {
  readonly touched = new Map<string, Touched>();
  /** Nodes this batch broke: the message that did not decode, and how many of theirs came after it. */
  readonly newlyBroken = new Map<string, { message: UndecodableMessage; skipped: number }>();
  /** Messages of nodes broken before this batch, per node. */
  readonly skipped = new Map<string, number>();
  count = 0;
  /** Position of the last message folded: the checkpoint this batch commits. */
  last = 0;
  readonly openedAt = performance.now();
}
