import { hostKeyCloudConfig } from '../providers/cloud-init-host-keys.ts';
import type { StepContext } from './step-context.ts';

/** What an intent records about the host key: never the private half. */
export interface RecordedHostKey {
  publicKey: string;
  fingerprint: string;
}

/** A reason the create must not be sent, as a job failure. */
export interface HostKeyRefusal {
  code: 'HOST_KEY_NOT_REPRODUCIBLE' | 'HOST_KEY_NOT_RECORDED';
  message: string;
  retryable: boolean;
}

/**
 * The job among the node's jobs whose derived key has this fingerprint, or null (a key an operator
 * trusted, or one derived under another secret). Derivation is cheap and touches no disk.
 */
const keyOwnerJob = (ctx: StepContext, fingerprint: string): string | null =>
  Object.keys(ctx.state.jobs).find((jobId) => ctx.deps.hostKeys.derive(ctx.nodeId, jobId).fingerprint === fingerprint) ?? null;

/**
 * The host key the intent records, before the POST. A node without one gets this job's key. A node
 * that has one keeps it: its server may still exist (a re-provision adopts it) and presents that key,
 * and a replacement server gets the same key, so the expectation holds either way. A kept key we
 * cannot reproduce (an operator trusted it) is not recorded again, so the node's expectation stands.
 */
export const intentHostKey = async (ctx: StepContext, jobId: string): Promise<RecordedHostKey | undefined> => {
  const existing = ctx.state.hostKey;
  const owner = existing ? keyOwnerJob(ctx, existing.fingerprint) : jobId;
  if (owner === null) return undefined;
  // Sealed on this worker's disk before the POST, as issue 10 asks, whichever worker sends it.
  const pair = await ctx.deps.hostKeys.forJob(ctx.nodeId, owner);
  return { publicKey: pair.publicKey, fingerprint: pair.fingerprint };
};

/**
 * The user_data for the create: the private half of the key the node expects. It must be the key
 * the intent recorded (a retry on another worker, or after a restart, sends the same one);
 * a worker that cannot reproduce it sends nothing rather than a key nobody expects.
 */
export const createUserData = (ctx: StepContext): { userData: string | undefined } | { refused: HostKeyRefusal } => {
  const expected = ctx.state.hostKey;
  if (!expected) {
    // Only an intent recorded before host keys existed; the next attempt records one.
    return { refused: { code: 'HOST_KEY_NOT_RECORDED', message: 'the create intent recorded no host key; the next attempt records one', retryable: true } };
  }
  const owner = keyOwnerJob(ctx, expected.fingerprint);
  if (owner === null) {
    // A key an operator trusted has no private half here: a replacement server boots with its own
    // key, and the first run refuses it (ANSIBLE_HOST_KEY_MISMATCH) until an operator trusts it.
    if (expected.source === 'trusted') return { userData: undefined };
    return {
      refused: {
        code: 'HOST_KEY_NOT_REPRODUCIBLE',
        message: `this worker cannot reproduce the host key ${expected.fingerprint} the create intent recorded: no job of this node derives to it here (is PRESSLUFT_SECRET_KEY the same on every worker?)`,
        retryable: false,
      },
    };
  }
  return { userData: hostKeyCloudConfig(ctx.deps.hostKeys.derive(ctx.nodeId, owner)) };
};

/**
 * True only when no POST for this node can have happened before this one, so the adapter may skip its
 * two look-ups (issue 13). The create step runs only for the node's latest message, which right after
 * the intent is the intent itself (ServerCreateRequested). Its first delivery means no earlier delivery
 * ran this step; attempt 1 of the node's only job, with no server ever recorded, means no earlier
 * attempt or job recorded an intent. A crash after the POST brings the message back with a higher
 * delivery count, a failed create starts a new attempt: both look up first. Should the consumer's
 * state ever be lost and a message come back counted 1, name uniqueness still guards: the POST gets
 * uniqueness_error and the adapter adopts by labels.
 */
export const knownAbsent = (ctx: StepContext, attempt: number): boolean =>
  ctx.deliveryCount === 1 && attempt === 1 && Object.keys(ctx.state.jobs).length === 1 && ctx.state.providerServerId === null;
