import { createHash, randomBytes } from 'node:crypto';

/** Node and job ids: a prefix and 20 hex characters, token-safe for NATS subjects (events/ids.ts). */
export interface ProvisionIds {
  nodeId: string;
  jobId: string;
  /** JetStream msgID of the ProvisionRequested decision. */
  messageId: string;
}

const hex20 = (seed: string): string => createHash('sha256').update(seed).digest('hex').slice(0, 20);

export const randomNodeId = (): string => `n_${randomBytes(10).toString('hex')}`;
export const randomJobId = (): string => `j_${randomBytes(10).toString('hex')}`;

/**
 * With an Idempotency-Key the ids are derived from it, so concurrent identical requests publish
 * the same msgID and JetStream's duplicate window collapses them into one decision.
 */
export const provisionIds = (idempotencyKey: string | undefined): ProvisionIds => {
  const nodeId = idempotencyKey ? `n_${hex20(`node:${idempotencyKey}`)}` : randomNodeId();
  const jobId = idempotencyKey ? `j_${hex20(`job:${idempotencyKey}`)}` : randomJobId();
  return { nodeId, jobId, messageId: `provision:${jobId}` };
};
