/**
 * The application services behind the API's node and job commands: ids, the provider, the
 * command context and Idempotency-Key replay are decided here, so an entry point only validates
 * input and formats the answer.
 */
import type { JobPolicy, NodeSpec } from '../events/node-events.ts';
import { handleCommand, type CommandContext } from './command-handler.ts';
import { IdempotencyKeyReused, NodeExists } from './domain-errors.ts';
import { provisionIds, randomJobId, type ProvisionIds } from './node-ids.ts';
import type { NodeRepository } from './node-repository.ts';

/** The actor of every command made with the single API token. */
export const API_ACTOR = 'api:default';

/** Hetzner is the only provider the saga wires (src/app/control-plane.ts); config picks its real API or the simulator. */
const PROVIDER: NodeSpec['provider'] = 'hetzner';

/** A node as a caller asks for it; the service adds the provider. */
export type NodeRequest = Omit<NodeSpec, 'provider'>;

export interface NodeCreated {
  nodeId: string;
  jobId: string;
  position: number;
}

const commandContext = (messageId: string, now: string): CommandContext => ({ actor: API_ACTOR, causationId: messageId, now, messageId });

const SPEC_FIELDS = ['name', 'provider', 'serverType', 'location', 'image', 'sshUser', 'sshPort'] as const;
const sameSpec = (a: NodeSpec, b: NodeSpec): boolean => SPEC_FIELDS.every((k) => a[k] === b[k]);

/**
 * A new node and its first provision (POST /v1/nodes). With an Idempotency-Key the ids are
 * derived from the key, so a repeat (or a concurrent twin, deduplicated by JetStream) finds the
 * node it made and answers the same 202; the same key with another body is a conflict.
 */
export const createNode = async (
  repo: NodeRepository,
  body: NodeRequest,
  o: { idempotencyKey: string | undefined; policy: JobPolicy; now: string },
): Promise<NodeCreated> => {
  const ids = provisionIds(o.idempotencyKey);
  const spec: NodeSpec = { ...body, provider: PROVIDER };
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
  throw new IdempotencyKeyReused();
};

/** A new provision job for an existing node (POST /v1/nodes/:nodeId/provision). */
export const reprovisionNode = async (repo: NodeRepository, nodeId: string, o: { policy: JobPolicy; now: string }): Promise<{ jobId: string; position: number }> => {
  const jobId = randomJobId();
  const messageId = `provision:${jobId}`;
  const r = await handleCommand(repo, nodeId, { type: 'RequestReprovision', nodeId, jobId, policy: o.policy }, commandContext(messageId, o.now));
  return { jobId, position: r.position };
};

/** A cancel request for a job whose node is known (POST /v1/jobs/:jobId/cancel). */
export const cancelJob = async (repo: NodeRepository, nodeId: string, jobId: string, o: { reason: string; now: string }): Promise<{ jobId: string; position: number }> => {
  // One cancel request per job: a repeated cancel is deduplicated, and the decider ignores it anyway.
  const r = await handleCommand(repo, nodeId, { type: 'RequestCancel', jobId, reason: o.reason }, commandContext(`cancel:${jobId}`, o.now));
  return { jobId, position: r.position };
};
