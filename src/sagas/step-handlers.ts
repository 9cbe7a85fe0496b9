import type { Step } from './provision-process.ts';
import { forbiddenTarget, tcpAccepts } from './reachability.ts';
import { runAnsible } from './ansible-run.ts';
import { checkWpCli } from './wp-cli-check.ts';
import { createUserData, intentHostKey, knownAbsent } from './host-key-step.ts';
import { RECORDED, stepMessageId, type Outcome, type StepContext } from './step-context.ts';

type Handler<K extends Step['kind']> = (ctx: StepContext, step: Extract<Step, { kind: K }>) => Promise<Outcome>;

/** How long the saga waits for sshd to accept a connection before it polls again. */
const SSHD_PROBE_MS = 2000;

/** One effect per step kind; the pure `react` decides which runs. */
export const stepHandlers: { [K in Step['kind']]: Handler<K> } = {
  none: async () => RECORDED,

  wait: async (_ctx, s) => ({ kind: 'wait', delayMs: s.delayMs, reason: s.reason }),

  start: (ctx, s) => {
    const attempt = (ctx.state.jobs[s.jobId]?.attempt ?? 0) + 1;
    return ctx.record({ type: 'StartAttempt', jobId: s.jobId }, stepMessageId(s.jobId, attempt, 'start'));
  },

  cancel: (ctx, s) => ctx.record({ type: 'ConfirmCancel', jobId: s.jobId }, stepMessageId(s.jobId, 'cancelled')),

  fail: (ctx, s) => ctx.recordFailure(s, s.errorCode, s.errorMessage, s.retryable),

  ensureSshKey: async (ctx, s) => {
    // No server is bought for a node that could never be converged: the phar is checked before any provider call.
    const wpCli = await checkWpCli(ctx.deps);
    if ('refused' in wpCli) return ctx.recordFailure({ ...s, step: 'wp_cli' }, wpCli.refused.code, wpCli.refused.message, false);
    return ctx.withProvider(s, 'ssh_key', async () => {
      const key = await ctx.deps.provider.ensureSshKey(ctx.deps.keyPair.publicKey);
      ctx.boundary('after-effect');
      return ctx.record({ type: 'RecordSshKey', jobId: s.jobId, attempt: s.attempt, keyId: key.keyId, fingerprint: key.fingerprint }, stepMessageId(s.jobId, s.attempt, 'ssh_key'));
    });
  },

  // Intent first: a retry after an uncertain create then knows to look up before creating; the host key it records is the one the server will present.
  recordCreateIntent: async (ctx, s) => {
    const labels = ctx.deps.provider.serverLabels?.(ctx.nodeId, s.jobId) ?? {};
    const hostKey = await intentHostKey(ctx, s.jobId);
    return ctx.record({ type: 'RecordServerCreateIntent', jobId: s.jobId, attempt: s.attempt, serverName: s.serverName, labels, ...(hostKey ? { hostKey } : {}) }, stepMessageId(s.jobId, s.attempt, 'create_intent'));
  },

  createServer: async (ctx, s) => {
    const hostKey = createUserData(ctx);
    if ('refused' in hostKey) return ctx.recordFailure({ ...s, step: 'server_create' }, hostKey.refused.code, hostKey.refused.message, hostKey.refused.retryable);
    return ctx.withProvider(s, 'server_create', async () => {
      const spec = ctx.state.spec!;
      const created = await ctx.deps.provider.createServer({
        nodeId: ctx.nodeId,
        jobId: s.jobId,
        name: s.serverName,
        serverType: spec.serverType,
        location: spec.location,
        image: spec.image,
        sshKeyId: ctx.state.jobs[s.jobId]?.progress.sshKey?.keyId ?? '',
        knownAbsent: knownAbsent(ctx, s.attempt),
        userData: hostKey.userData,
      });
      ctx.boundary('after-effect');
      return ctx.record({ type: 'RecordServerCreated', jobId: s.jobId, attempt: s.attempt, ...created }, stepMessageId(s.jobId, s.attempt, 'server_created'));
    });
  },

  pollActions: (ctx, s) =>
    ctx.withProvider(s, 'server_actions', async () => {
      const known = ctx.state.jobs[s.jobId]?.progress.actions ?? {};
      const states = await ctx.deps.provider.getActions(s.actionIds);
      ctx.boundary('after-effect');
      // ActionPolled is a change log: record the first change; its message triggers the next poll at once.
      const changed = states.find((a) => known[a.actionId]?.status !== a.status || known[a.actionId]?.progress !== a.progress);
      if (!changed) return ctx.poll('actions running');
      return ctx.record(
        { type: 'RecordActionPolled', jobId: s.jobId, attempt: s.attempt, actionId: changed.actionId, status: changed.status, progress: changed.progress, errorCode: changed.error?.code ?? null },
        stepMessageId(s.jobId, s.attempt, 'action', changed.actionId, changed.status, changed.progress),
      );
    }),

  awaitServer: (ctx, s) =>
    ctx.withProvider(s, 'server_ready', async () => {
      const server = await ctx.deps.provider.getServer(s.serverId);
      const host = server.ipv4 ?? server.ipv6;
      if (server.status !== 'running' || !host) return ctx.poll(`server ${server.status}`);
      const port = ctx.state.spec!.sshPort;
      const forbidden = forbiddenTarget(host, port);
      if (forbidden) return ctx.recordFailure({ ...s, step: 'server_ready' }, 'TARGET_FORBIDDEN', forbidden, false);
      if (!(await tcpAccepts(host, port, SSHD_PROBE_MS))) return ctx.poll('sshd not up yet');
      ctx.boundary('after-effect');
      return ctx.record(
        { type: 'RecordServerReady', jobId: s.jobId, attempt: s.attempt, serverId: server.serverId, ipv4: server.ipv4, ipv6: server.ipv6, providerStatus: server.status },
        stepMessageId(s.jobId, s.attempt, 'ready'),
      );
    }),

  startAnsible: (ctx, s) => {
    const bundle = ctx.deps.playbookBundle;
    const expected = ctx.state.jobs[s.jobId]?.expectPlaybook;
    // The caller pinned the playbook it reviewed: a worker with other playbooks must not run them.
    if (expected && expected !== bundle.digest) {
      return ctx.recordFailure({ ...s, step: 'ansible' }, 'PLAYBOOK_DIGEST_MISMATCH', `the job expects playbook bundle ${expected}, this worker has ${bundle.digest} (version ${bundle.version})`, false);
    }
    // The run trusts exactly the node's recorded host key; a local connection uses none.
    const hostKeyFingerprint = ctx.deps.targetConnection === 'local' ? null : (ctx.state.hostKey?.fingerprint ?? null);
    return ctx.record(
      { type: 'RecordAnsibleStarted', jobId: s.jobId, attempt: s.attempt, playbook: ctx.deps.playbook, playbookDigest: bundle.digest, productVersion: bundle.version, hostKeyFingerprint },
      stepMessageId(s.jobId, s.attempt, 'ansible_started'),
    );
  },

  runAnsible,
};

/** Runs the handler of a step's kind. (TypeScript cannot correlate the map's key and argument types; the map's type guarantees it.) */
export const runStep = (ctx: StepContext, step: Step): Promise<Outcome> => (stepHandlers[step.kind] as (c: StepContext, s: Step) => Promise<Outcome>)(ctx, step);
