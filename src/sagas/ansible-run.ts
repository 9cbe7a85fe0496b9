import type { TaskProgress } from '../ansible/runner-port.ts';
import type { LoadedNode } from '../commands/node-repository.ts';
import { react, type Step } from './provision-process.ts';
import { forbiddenTarget } from './reachability.ts';
import { checkWpCli } from './wp-cli-check.ts';
import { stepMessageId, type Outcome, type StepContext } from './step-context.ts';

type RunStep = Extract<Step, { kind: 'runAnsible' }>;

/**
 * The long step. The message that carries AnsibleStarted stays unacked while Ansible runs, with
 * working() heartbeats: that is the lease, so no second worker starts the same run. A watcher
 * aborts the run (killing its process group) when the lease is lost: the job was cancelled or
 * failed meanwhile, or this worker is stopping.
 */
export const runAnsible = async (ctx: StepContext, step: RunStep): Promise<Outcome> => {
  const { deps, nodeId } = ctx;
  const target = recordedTarget(ctx, step);
  if ('forbidden' in target) return ctx.recordFailure({ ...step, step: 'ansible' }, 'TARGET_FORBIDDEN', target.forbidden, false);
  // No trust on first use: over ssh a run trusts the recorded key and nothing else (issue 10).
  const hostKey = deps.targetConnection === 'ssh' ? (ctx.state.hostKey ?? null) : null;
  if (deps.targetConnection === 'ssh' && hostKey === null) return ctx.recordFailure({ ...step, step: 'ansible' }, 'HOST_KEY_UNTRUSTED', noHostKeyMessage(nodeId), false);
  // The phar was verified before the server was bought; this is a lookup of that result (a worker on another data dir may still fail it).
  const wpCli = await checkWpCli(deps);
  if ('refused' in wpCli) return ctx.recordFailure({ ...step, step: 'ansible' }, wpCli.refused.code, wpCli.refused.message, false);
  const abort = new AbortController();
  deps.running.add(abort);
  let confirming: Promise<Outcome> | null = null;
  const checkLease = (): void =>
    void leaseLost(ctx, step).then((latest) => {
      if (latest === null || abort.signal.aborted) return;
      abort.abort();
      if (latest === 'stopping') return;
      // The kill is under way and the result will never be recorded: the cancel is decided now, not after the teardown.
      confirming = confirmCancel(ctx, latest);
      confirming.catch(() => undefined);
    }, () => undefined);
  const watcher = setInterval(checkLease, deps.watchIntervalMs);
  deps.leaseChecks.set(nodeId, checkLease);
  ctx.boundary('before-effect');
  try {
    const result = await deps.runner.run({
      playbook: deps.playbook,
      node: { host: target.host, port: target.port, user: step.user, connection: deps.targetConnection, ...(hostKey ? { hostKey: { publicKey: hostKey.publicKey, fingerprint: hostKey.fingerprint } } : {}) },
      vars: { ...deps.ansibleVars, ...wpCli.vars, pressluft_node_id: nodeId, pressluft_node_name: ctx.state.spec!.name, pressluft_job_id: step.jobId },
      privateKey: deps.keyPair.privateKey,
      secrets: [deps.keyPair.privateKey],
      timeoutMs: step.timeoutMs,
      signal: abort.signal,
      onProgress: (p: TaskProgress) => deps.store.publishProgress(step.jobId, { ...p, jobId: step.jobId, attempt: step.attempt }),
    });
    ctx.boundary('after-effect');
    if (abort.signal.aborted) return confirming ?? afterAbort(ctx);
    const finishedAt = ctx.isoNow();
    return ctx.record(
      { type: 'RecordAnsibleResult', jobId: step.jobId, attempt: step.attempt, result: { ...result, errorCode: result.errorCode, finishedAt } },
      stepMessageId(step.jobId, step.attempt, 'ansible_result'),
      finishedAt,
    );
  } finally {
    clearInterval(watcher);
    deps.leaseChecks.delete(nodeId);
    deps.running.delete(abort);
  }
};

const noHostKeyMessage = (nodeId: string): string =>
  `node ${nodeId} has no recorded host key (it was created before host keys were injected at create); no run trusts a key on first use`;

/**
 * The address comes from the provider's server record as the saga recorded it (ServerReady), and
 * the port guard is applied again right before the run: whatever else the log says, Ansible never
 * goes to this machine's own sshd.
 */
const recordedTarget = (ctx: StepContext, step: RunStep): { host: string; port: number } | { forbidden: string } => {
  const ready = ctx.state.jobs[step.jobId]?.progress.ready;
  const host = ready?.ipv4 ?? ready?.ipv6;
  if (!host) return { forbidden: 'no server address was recorded from the provider' };
  const port = ctx.state.spec!.sshPort;
  const forbidden = forbiddenTarget(host, port);
  return forbidden ? { forbidden } : { host, port };
};

/** Aborted by stop(), or before the lease check had the newer state: the newest state decides. */
const afterAbort = async (ctx: StepContext): Promise<Outcome> =>
  ctx.deps.stopping() ? { kind: 'wait', delayMs: 0, reason: 'ansible aborted: stopping' } : confirmCancel(ctx, await ctx.deps.repo.load(ctx.nodeId));

/**
 * A run that lost its lease to a cancel request confirms the cancel itself: the cancel's own
 * message waits behind this node's busy mark for up to the ack wait, and a cancel must be
 * confirmed within seconds. Anything else that ended the lease is left to the newer state.
 */
const confirmCancel = async (ctx: StepContext, latest: LoadedNode): Promise<Outcome> => {
  const next = react(latest.state, { nowMs: ctx.deps.now(), minPollIntervalMs: ctx.deps.poll.initialMs });
  if (next.kind !== 'cancel') return { kind: 'wait', delayMs: 0, reason: 'ansible aborted' };
  return ctx.record({ type: 'ConfirmCancel', jobId: next.jobId }, stepMessageId(next.jobId, 'cancelled'), ctx.isoNow(), latest);
};

/**
 * The lease holds while the run's message is the node's latest, or the job still runs this attempt
 * uncancelled. Null while it holds; otherwise why not: this worker is stopping, or the newer state.
 */
const leaseLost = async (ctx: StepContext, step: RunStep): Promise<LoadedNode | 'stopping' | null> => {
  if (ctx.deps.stopping()) return 'stopping';
  if ((await ctx.deps.store.version(ctx.nodeId)) === ctx.seen.version) return null;
  const latest = await ctx.deps.repo.load(ctx.nodeId);
  const job = latest.state.jobs[step.jobId];
  return job?.status === 'running' && job.attempt === step.attempt && !job.cancelRequested ? null : latest;
};
