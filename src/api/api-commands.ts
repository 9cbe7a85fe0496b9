import { handleCommand, type CommandContext } from '../commands/command-handler.ts';
import { NodeExists } from '../commands/domain-errors.ts';
import type { NodeRepository } from '../commands/node-repository.ts';
import type { JobPolicy, NodeSpec } from '../events/node-events.ts';
import { ApiError } from './api-error.ts';
import type { CreateNodeBody } from './api-schemas.ts';
import { API_ACTOR } from './bearer-auth.ts';
import { provisionIds, randomJobId, type ProvisionIds } from './node-ids.ts';

export interface NodeCreated {
  nodeId: string;
  jobId: string;
  position: number;
}

const commandContext = (messageId: string, now: string): CommandContext => ({ actor: API_ACTOR, causationId: messageId, now, messageId });

const SPEC_FIELDS = ['name', 'provider', 'serverType', 'location', 'image', 'sshUser', 'sshPort'] as const;
const sameSpec = (a: NodeSpec, b: NodeSpec): boolean => SPEC_FIELDS.every((k) => a[k] === b[k]);

/**
 * POST /v1/nodes. With an Idempotency-Key the ids are derived from the key, so a repeat (or a
 * concurrent twin, deduplicated by JetStream) finds the node it made and answers the same 202;
 * the same key with another body is a conflict.
 */
export const createNode = async (
  repo: NodeRepository,
  body: CreateNodeBody,
  o: { idempotencyKey: string | undefined; policy: JobPolicy; now: string },
): Promise<NodeCreated> => {
  const ids = provisionIds(o.idempotencyKey);
  const spec: NodeSpec = { ...body, provider: 'hetzner' };
  const cmd = { type: 'RequestProvision' as const, nodeId: ids.nodeId, jobId: ids.jobId, spec, policy: o.policy };
  try {
    const r = await handleCommand(repo, ids.nodeId, cmd, commandContext(ids.messageId, o.now));
    // A duplicate ack means a twin with the same key won the race: its body may differ from ours.
    if (!o.idempotencyKey || !r.duplicate) return { nodeId: ids.nodeId, jobId: ids.jobId, position: r.position };
  } catch (e) {
    if (!(o.idempotencyKey && e instanceof NodeExists)) throw e;
  }
  return replayKeyed(repo, ids, spec);
};

const replayKeyed = async (repo: NodeRepository, ids: ProvisionIds, spec: NodeSpec): Promise<NodeCreated> => {
  const first = (await repo.history(ids.nodeId)).find((e) => e.type === 'ProvisionRequested');
  if (first?.type === 'ProvisionRequested' && first.data.jobId === ids.jobId && sameSpec(first.data, spec)) {
    return { nodeId: ids.nodeId, jobId: ids.jobId, position: first.position };
  }
  throw new ApiError(409, 'conflict', 'this Idempotency-Key was already used with a different request body');
};

/** POST /v1/nodes/:nodeId/provision: a new job for an existing node. */
export const reprovisionNode = async (repo: NodeRepository, nodeId: string, o: { policy: JobPolicy; now: string }): Promise<{ jobId: string; position: number }> => {
  const jobId = randomJobId();
  const messageId = `provision:${jobId}`;
  const r = await handleCommand(repo, nodeId, { type: 'RequestReprovision', nodeId, jobId, policy: o.policy }, commandContext(messageId, o.now));
  return { jobId, position: r.position };
};

/** POST /v1/jobs/:jobId/cancel, once the job's node is known. */
export const cancelJob = async (repo: NodeRepository, nodeId: string, jobId: string, o: { reason: string; now: string }): Promise<{ jobId: string; position: number }> => {
  // One cancel request per job: a repeated cancel is deduplicated, and the decider ignores it anyway.
  const r = await handleCommand(repo, nodeId, { type: 'RequestCancel', jobId, reason: o.reason }, commandContext(`cancel:${jobId}`, o.now));
  return { jobId, position: r.position };
};
