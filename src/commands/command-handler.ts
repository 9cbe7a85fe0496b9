import { WrongExpectedVersion } from '../eventstore/event-store.ts';
import { toEnvelopes, type EnvelopeContext, type EventEnvelope } from '../events/envelope.ts';
import { initialNodeState, type NodeState } from '../events/node-state.ts';
import { decide } from './node-decider.ts';
import type { NodeCommand } from './node-commands.ts';
import { foldDecisions, type LoadedNode, type NodeRepository } from './node-repository.ts';

/** Who issues a command, why, when, and the deterministic message id of its decision. */
export type CommandContext = EnvelopeContext;

export interface CommandResult {
  /** Position of the appended (or deduplicated) message; the current version when nothing was appended. */
  position: number;
  duplicate: boolean;
  events: EventEnvelope[];
  state: NodeState;
}

export interface RetryOptions {
  tries: number;
  delayMs: number;
  factor: number;
}

export interface HandleOptions {
  retry?: RetryOptions;
  /** State the caller already loaded; saves a round trip, and a stale one only costs a retry. */
  preloaded?: LoadedNode;
}

const DEFAULT_RETRY: RetryOptions = { tries: 5, delayMs: 20, factor: 1.5 };

/**
 * A command that creates its node is first tried on an empty stream, without the version lookup:
 * its node id is new (random, or derived from an Idempotency-Key), so the lookup would say 0. If the
 * node exists after all, the append fails with WrongExpectedVersion (or is deduplicated by its
 * message id) and the next try loads the stream as usual.
 */
const createsNode = (cmd: NodeCommand): boolean => cmd.type === 'RequestProvision';
const emptyStream = (): LoadedNode => ({ state: initialNodeState(), version: 0 });

/**
 * The imperative shell around `decide`: load, decide, append with the expected version.
 * A concurrent writer makes the append fail; then we reload and decide again (as Emmett does:
 * a few tries with a growing delay), so the decision always sees the state it is appended on.
 */
export const handleCommand = async (
  repo: NodeRepository,
  nodeId: string,
  cmd: NodeCommand,
  ctx: CommandContext,
  { retry = DEFAULT_RETRY, preloaded }: HandleOptions = {},
): Promise<CommandResult> => {
  let delay = retry.delayMs;
  let guess = preloaded ?? (createsNode(cmd) ? emptyStream() : undefined);
  for (let attempt = 1; ; attempt++) {
    const guessed = guess !== undefined && !preloaded;
    const { state, version } = guess ?? (await repo.load(nodeId));
    guess = undefined;
    const events = decide(cmd, state);
    if (events.length === 0) return { position: version, duplicate: false, events: [], state };
    const envelopes = toEnvelopes(nodeId, events, ctx);
    try {
      const { position, duplicate } = await repo.store.append(nodeId, envelopes, { expectedVersion: version, messageId: ctx.messageId });
      if (duplicate) return { position, duplicate, events: envelopes, state };
      const next = foldDecisions([{ position, subject: '', events: envelopes }], state);
      repo.remember(nodeId, { state: next, version: position });
      return { position, duplicate, events: envelopes, state: next };
    } catch (e) {
      if (!(e instanceof WrongExpectedVersion) || attempt >= retry.tries) throw e;
      // A wrong guess of a new node's version is no contention: load at once.
      if (guessed) continue;
      await new Promise((r) => setTimeout(r, delay));
      delay *= retry.factor;
    }
  }
};
