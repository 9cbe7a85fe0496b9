import { handleCommand, type CommandContext } from '../commands/command-handler.ts';
import { StaleStep } from '../commands/domain-errors.ts';
import { EventDecodeError } from '../events/event-codec.ts';
import type { NodeRepository } from '../commands/node-repository.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import { stepMessageId } from './step-context.ts';

/**
 * A message that exhausted max_deliver is a stuck or poisoned step: fail its job visibly. Only when
 * that message is still the node's latest and its job is active; anything newer already moved on.
 */
export const failExhaustedStep = async (o: { store: EventStore; repo: NodeRepository; now: () => number }, seq: number, deliveries: number): Promise<void> => {
  const msg = await o.store.getMessage(seq);
  if (!msg) return;
  const nodeId = o.store.streamIdOf(msg.subject);
  // A node whose log does not decode cannot have a failure recorded (its projection is marked broken, ADR 0012).
  const loaded = await o.repo.load(nodeId).catch((e: unknown) => {
    if (e instanceof EventDecodeError) return null;
    throw e;
  });
  if (!loaded) return;
  const { state, version } = loaded;
  const job = state.currentJobId ? state.jobs[state.currentJobId] : undefined;
  if (version !== seq || !job || (job.status !== 'running' && job.status !== 'queued')) return;
  const now = new Date(o.now()).toISOString();
  const ctx: CommandContext = { actor: 'saga', causationId: String(seq), now, messageId: stepMessageId(job.jobId, 'exhausted', seq) };
  const reason = `the step at position ${seq} was delivered ${deliveries} times without completing`;
  // A queued job has no attempt running; start one so that the failure is recorded against it.
  if (job.status === 'queued') {
    await handleCommand(o.repo, nodeId, { type: 'StartAttempt', jobId: job.jobId }, { ...ctx, messageId: stepMessageId(job.jobId, 'exhausted-start', seq) });
  }
  const attempt = job.status === 'queued' ? job.attempt + 1 : job.attempt;
  await handleCommand(
    o.repo,
    nodeId,
    { type: 'RecordStepFailure', jobId: job.jobId, attempt, step: 'saga', errorCode: 'STEP_DELIVERY_EXHAUSTED', errorMessage: reason, retryable: false, now },
    ctx,
  ).catch((e: unknown) => {
    if (!(e instanceof StaleStep)) throw e;
  });
};
