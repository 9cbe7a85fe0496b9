/**
 * The application services behind the API's node and job commands: ids, the provider, the
 * command context and Idempotency-Key replay are decided here, so an entry point only validates
 * input and formats the answer.
 */
import type { JobPolicy, NodeSpec } from '../events/node-events.ts';
import { handleCommand, type CommandContext } from './command-handler.ts';
import { IdempotencyKeyReused, NodeExists, PlaybookDigestMismatch } from './domain-errors.ts';
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

/** What a provision request may require of the bundle, and the bundle this control plane runs (injected at start-up). */
export interface PlaybookExpectation {
  expectPlaybook?: string | undefined;
  playbookDigest: string;
}

/**
 * Refused before anything is appended: a job that would run another bundle than the caller read is
 * no job at all. The event keeps the expectation, so a worker with another bundle refuses it too.
 */
const checkPlaybook = (o: PlaybookExpectation): { expectPlaybook?: string } => {
  if (o.expectPlaybook === undefined) return {};
  if (o.expectPlaybook !== o.playbookDigest) throw new PlaybookDigestMismatch(o.expectPlaybook, o.playbookDigest);
  return { expectPlaybook: o.expectPlaybook };
};

/**
 * A new node and its first provision (POST /v1/nodes). With an Idempotency-Key the ids are
 * derived from the key, so a repeat (or a concurrent twin, deduplicated by JetStream) finds the
 * node it made and answers the same 202; the same key with another body is a conflict.
 */
export const createNode = async (
  repo: NodeRepository,
  body: NodeRequest,
  o: { idempotencyKey: string | undefined; policy: JobPolicy; now: string } & PlaybookExpectation,
): Promise<NodeCreated> => {
  const expected = checkPlaybook(o);
  const ids = provisionIds(o.idempotencyKey);
  // Field by field: an extra key (say the request's expectPlaybook) folded into the strict event would make it undecodable.
  const spec: NodeSpec = { name: body.name, provider: PROVIDER, serverType: body.serverType, location: body.location, image: body.image, sshUser: body.sshUser, sshPort: body.sshPort };
  const cmd = { type: 'RequestProvision' as const, nodeId: ids.nodeId, jobId: ids.jobId, spec, policy: o.policy, ...expected };
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
export const reprovisionNode = async (
  repo: NodeRepository,
  nodeId: string,
  o: { policy: JobPolicy; now: string } & PlaybookExpectation,
): Promise<{ jobId: string; position: number }> => {
  const expected = checkPlaybook(o);
  const jobId = randomJobId();
  const messageId = `provision:${jobId}`;
  const r = await handleCommand(repo, nodeId, { type: 'RequestReprovision', nodeId, jobId, policy: o.policy, ...expected }, commandContext(messageId, o.now));
  return { jobId, position: r.position };
};

/**
 * Trusts the host key a failed run saw (POST /v1/nodes/:nodeId/trust-host-key). The message id
 * names the version the decision was made on: a retried request deduplicates, while trusting the
 * same key again after another change is a new decision.
 */
export const trustHostKey = async (repo: NodeRepository, nodeId: string, o: { fingerprint: string; now: string }): Promise<{ nodeId: string; fingerprint: string; position: number }> => {
  const loaded = await repo.load(nodeId);
  const messageId = `trust-host-key:${nodeId}:${loaded.version}`;
  const r = await handleCommand(repo, nodeId, { type: 'TrustHostKey', nodeId, fingerprint: o.fingerprint }, commandContext(messageId, o.now), { preloaded: loaded });
  return { nodeId, fingerprint: o.fingerprint, position: r.position };
};

/** A cancel request for a job whose node is known (POST /v1/jobs/:jobId/cancel). */
export const cancelJob = async (repo: NodeRepository, nodeId: string, jobId: string, o: { reason: string; now: string }): Promise<{ jobId: string; position: number }> => {
  // One cancel request per job: a repeated cancel is deduplicated, and the decider ignores it anyway.
  const r = await handleCommand(repo, nodeId, { type: 'RequestCancel', jobId, reason: o.reason }, commandContext(`cancel:${jobId}`, o.now));
  return { jobId, position: r.position };
};
