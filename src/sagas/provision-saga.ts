import { connect as tcpConnect } from 'node:net';
import { AckPolicy, DeliverPolicy, JetStreamApiError, type JsMsg } from '@nats-io/jetstream';
import { handleCommand, type CommandContext } from '../commands/command-handler.ts';
import type { NodeCommand } from '../commands/node-commands.ts';
import { StaleStep } from '../commands/domain-errors.ts';
import { NodeRepository } from '../commands/node-repository.ts';
import type { NodeState } from '../events/node-state.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import type { AnsibleRunner, TaskProgress } from '../ansible/runner-port.ts';
import { ProviderError, type ProviderPort } from '../providers/provider-port.ts';
import { DEFAULT_POLL, pollDelayMs, react, type PollSchedule, type Step } from './provision-process.ts';
import { MaxDeliveriesWatch } from './max-deliveries-watch.ts';
import type { Metrics } from '../metrics/metrics.ts';

const NANOS_PER_MS = 1_000_000;

/** Where a worker can die relative to a step's side effect; the crash tests kill it at each one. */
export type Boundary = 'before-effect' | 'after-effect' | 'after-append';

export interface ProvisionSagaOptions {
  store: EventStore;
  provider: ProviderPort;
  runner: AnsibleRunner;
  /** The control plane's key pair: the public half goes to the provider, the private half to Ansible for one run. */
  keyPair: { publicKey: string; readonly privateKey: string };
  logger: Logger;
  metrics?: Metrics;
  playbook: string;
  /** Extra-vars every run gets, on top of the node-derived ones. */
  ansibleVars?: Record<string, unknown>;
  consumerName?: string;
  ackWaitMs?: number;
  maxDeliver?: number;
  concurrency?: number;
  poll?: PollSchedule;
  /** `local` runs plays on the control plane itself; only tests use it. Default `ssh`. */
  targetConnection?: 'ssh' | 'local';
  /** How often a worker running Ansible checks its node's stream for a cancel. */
  watchIntervalMs?: number;
  /** Fault injection for tests: called at each step boundary. */
  onBoundary?: (b: Boundary, step: Step['kind'], nodeId: string) => void;
  now?: () => number;
}

/** The state a step was decided from, at the triggering message's position. */
type Seen = { state: NodeState; version: number };

/** Outcome of one step: recorded (a new message drives on), or come back later. */
type Outcome = { kind: 'recorded' } | { kind: 'wait'; delayMs: number; reason: string };

/**
 * The node_provision saga's executor. A durable pull consumer on the event stream, shared by any
 * number of worker processes, delivers every decision. Only the message that is the node's
 * latest acts: it runs the next step through a port, appends the result with the expected
 * version and a deterministic msgID, and is acked only after the append. Older messages are
 * acked at once. So one node has one actor at a time, and a crash at any line is redone safely.
 */
export class ProvisionSaga {
  private readonly repo: NodeRepository;
  private readonly consumerName: string;
  private readonly ackWaitMs: number;
  private readonly maxDeliver: number;
  private readonly concurrency: number;
  private readonly poll: PollSchedule;
  private readonly now: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly running = new Set<AbortController>();
  /** Nodes this process is acting on now: a redelivery that overtakes a slow heartbeat must not start the step twice. */
  private readonly busy = new Set<string>();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private closeMessages: (() => Promise<unknown>) | null = null;
  private readonly exhausted: MaxDeliveriesWatch;

  constructor(private readonly o: ProvisionSagaOptions) {
    this.repo = new NodeRepository(o.store);
    this.consumerName = o.consumerName ?? 'pressluft-saga';
    this.ackWaitMs = o.ackWaitMs ?? 30_000;
    this.maxDeliver = o.maxDeliver ?? 500;
    this.concurrency = o.concurrency ?? 32;
    this.poll = o.poll ?? DEFAULT_POLL;
    this.now = o.now ?? Date.now;
    this.exhausted = new MaxDeliveriesWatch({
      store: o.store,
      consumerName: this.consumerName,
      logger: o.logger,
      onExhausted: (seq, deliveries) => this.failExhausted(seq, deliveries),
    });
  }

  async start(): Promise<void> {
    await this.ensureConsumer();
    await this.exhausted.start();
    const consumer = await this.o.store.js.consumers.get(this.o.store.streamName, this.consumerName);
    const messages = await consumer.consume({ max_messages: this.concurrency });
    this.closeMessages = () => messages.close();
    this.loop = (async () => {
      for await (const m of messages) {
        if (this.stopping) break;
        const work = this.handle(m).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
        while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.closeMessages?.();
    for (const c of this.running) c.abort();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    await this.exhausted.stop();
  }

  /** One durable consumer for all workers. Never a backoff array: it would distort nak(delay). */
  private async ensureConsumer(): Promise<void> {
    const { jsm, streamName, allSubjects } = this.o.store;
    const config = {
      durable_name: this.consumerName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: allSubjects,
      ack_wait: this.ackWaitMs * NANOS_PER_MS,
      max_deliver: this.maxDeliver,
      max_ack_pending: 10_000,
    };
    try {
      await jsm.consumers.info(streamName, this.consumerName);
      await jsm.consumers.update(streamName, this.consumerName, { ack_wait: config.ack_wait, max_deliver: config.max_deliver, max_ack_pending: config.max_ack_pending });
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== 10014) throw e;
      await jsm.consumers.add(streamName, config);
    }
    const info = await jsm.consumers.info(streamName, this.consumerName);
    if (info.config.backoff?.length) throw new Error(`consumer ${this.consumerName} has a backoff array; it must not (nak delays would be wrong)`);
    if (info.config.max_deliver !== this.maxDeliver || info.config.ack_wait !== config.ack_wait) {
      throw new Error(`consumer ${this.consumerName} config not in force: max_deliver ${info.config.max_deliver}, ack_wait ${info.config.ack_wait}`);
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const nodeId = this.o.store.streamIdOf(m.subject);
    // working() keeps the message ours while a step runs; if this worker dies, it comes back after ack_wait.
    const heartbeat = setInterval(() => m.working(), Math.max(250, Math.floor(this.ackWaitMs / 3)));
    let owned = false;
    try {
      const { state, version } = await this.repo.load(nodeId);
      if (version > m.seq) {
        m.ack();
        return;
      }
      if (this.busy.has(nodeId)) {
        m.nak(this.ackWaitMs);
        return;
      }
      this.busy.add(nodeId);
      owned = true;
      const step = react(state, { nowMs: this.now(), minPollIntervalMs: this.poll.initialMs });
      const started = Date.now();
      const outcome = await this.execute(step, nodeId, state, m);
      this.o.metrics?.observeMs('pressluft_saga_step_duration_ms', { step: step.kind, outcome: outcome.kind }, Date.now() - started, 'Time a saga step took, from dispatch to its recorded result or wait');
      if (outcome.kind === 'wait') {
        this.o.logger.debug({ nodeId, reason: outcome.reason, delayMs: outcome.delayMs }, 'saga: waiting');
        m.nak(outcome.delayMs);
        return;
      }
      this.o.onBoundary?.('after-append', step.kind, nodeId);
      m.ack();
    } catch (e) {
      // Unexpected: leave it to redelivery with a growing delay; max_deliver turns a poison message into a visible failure.
      this.o.logger.error({ nodeId, position: m.seq, err: e }, 'saga: step failed unexpectedly');
      m.nak(pollDelayMs(m.info.deliveryCount, this.poll));
    } finally {
      clearInterval(heartbeat);
      if (owned) this.busy.delete(nodeId);
    }
  }

  /** Records a step's result on the state the step was decided from (`seen`, at the message's position). */
  private record(nodeId: string, cmd: NodeCommand, messageId: string, seen: { state: NodeState; version: number }, now = this.isoNow()): Promise<unknown> {
    const ctx: CommandContext = { actor: 'saga', causationId: String(seen.version), now, messageId };
    return handleCommand(this.repo, nodeId, cmd, ctx, undefined, seen).catch((e: unknown) => {
      // The state moved on (another worker, a redo): the step is already decided.
      if (!(e instanceof StaleStep)) throw e;
    });
  }

  private async execute(step: Step, nodeId: string, s: NodeState, m: JsMsg): Promise<Outcome> {
    const recorded: Outcome = { kind: 'recorded' };
    const at = { state: s, version: m.seq };
    const boundary = (b: Boundary): void => this.o.onBoundary?.(b, step.kind, nodeId);
    const poll = (reason: string): Outcome => ({ kind: 'wait', delayMs: pollDelayMs(m.info.deliveryCount, this.poll), reason });
    switch (step.kind) {
      case 'none':
        return recorded;
      case 'wait':
        return { kind: 'wait', delayMs: step.delayMs, reason: step.reason };
      case 'start': {
        const attempt = (s.jobs[step.jobId]?.attempt ?? 0) + 1;
        await this.record(nodeId, { type: 'StartAttempt', jobId: step.jobId }, `${step.jobId}:${attempt}:start`, at);
        return recorded;
      }
      case 'cancel':
        await this.record(nodeId, { type: 'ConfirmCancel', jobId: step.jobId }, `${step.jobId}:cancelled`, at);
        return recorded;
      case 'fail':
        await this.recordFailure(nodeId, step, step.errorCode, step.errorMessage, step.retryable, at);
        return recorded;
      case 'ensureSshKey':
        return this.withProvider(nodeId, step, 'ssh_key', at, boundary, async () => {
          const key = await this.o.provider.ensureSshKey(this.o.keyPair.publicKey);
          boundary('after-effect');
          await this.record(nodeId, { type: 'RecordSshKey', jobId: step.jobId, attempt: step.attempt, keyId: key.keyId, fingerprint: key.fingerprint }, `${step.jobId}:${step.attempt}:ssh_key`, at);
          return recorded;
        });
      case 'recordCreateIntent': {
        // Intent first: a retry after an uncertain create then knows to look up before creating.
        const labels = this.o.provider.serverLabels?.(nodeId, step.jobId) ?? {};
        await this.record(nodeId, { type: 'RecordServerCreateIntent', jobId: step.jobId, attempt: step.attempt, serverName: step.serverName, labels }, `${step.jobId}:${step.attempt}:create_intent`, at);
        return recorded;
      }
      case 'createServer':
        return this.withProvider(nodeId, step, 'server_create', at, boundary, async () => {
          const spec = s.spec!;
          const sshKeyId = s.jobs[step.jobId]?.progress.sshKey?.keyId ?? '';
          const created = await this.o.provider.createServer({
            nodeId,
            jobId: step.jobId,
            name: step.serverName,
            serverType: spec.serverType,
            location: spec.location,
            image: spec.image,
            sshKeyId,
          });
          boundary('after-effect');
          await this.record(nodeId, { type: 'RecordServerCreated', jobId: step.jobId, attempt: step.attempt, ...created }, `${step.jobId}:${step.attempt}:server_created`, at);
          return recorded;
        });
      case 'pollActions':
        return this.withProvider(nodeId, step, 'server_actions', at, boundary, async () => {
          const known = s.jobs[step.jobId]?.progress.actions ?? {};
          const states = await this.o.provider.getActions(step.actionIds);
          boundary('after-effect');
          // ActionPolled is a change log: record the first change; its message triggers the next poll at once.
          const changed = states.find((a) => known[a.actionId]?.status !== a.status || known[a.actionId]?.progress !== a.progress);
          if (!changed) return poll('actions running');
          await this.record(
            nodeId,
            { type: 'RecordActionPolled', jobId: step.jobId, attempt: step.attempt, actionId: changed.actionId, status: changed.status, progress: changed.progress, errorCode: changed.error?.code ?? null },
            `${step.jobId}:${step.attempt}:action:${changed.actionId}:${changed.status}:${changed.progress}`,
            at,
          );
          return recorded;
        });
      case 'awaitServer':
        return this.withProvider(nodeId, step, 'server_ready', at, boundary, async () => {
          const server = await this.o.provider.getServer(step.serverId);
          const host = server.ipv4 ?? server.ipv6;
          if (server.status !== 'running' || !host) return poll(`server ${server.status}`);
          if (isLoopback(host) && s.spec!.sshPort === 22) {
            // Simulated servers get loopback addresses; port 22 there is the control plane's own sshd.
            await this.recordFailure(nodeId, { ...step, step: 'server_ready' }, 'TARGET_FORBIDDEN', `refusing to provision ${host}:22: that is this machine's own sshd`, false, at);
            return recorded;
          }
          if (!(await tcpAccepts(host, s.spec!.sshPort, 2000))) return poll('sshd not up yet');
          boundary('after-effect');
          await this.record(
            nodeId,
            { type: 'RecordServerReady', jobId: step.jobId, attempt: step.attempt, serverId: server.serverId, ipv4: server.ipv4, ipv6: server.ipv6, providerStatus: server.status },
            `${step.jobId}:${step.attempt}:ready`,
            at,
          );
          return recorded;
        });
      case 'startAnsible':
        await this.record(nodeId, { type: 'RecordAnsibleStarted', jobId: step.jobId, attempt: step.attempt, playbook: this.o.playbook }, `${step.jobId}:${step.attempt}:ansible_started`, at);
        return recorded;
      case 'runAnsible':
        return this.runAnsible(nodeId, step, s, m, boundary);
    }
  }

  /** Provider errors become retryable or terminal job outcomes; a provider's "come back at" becomes a wait. */
  private async withProvider(nodeId: string, step: Step & { jobId: string; attempt: number }, stepName: string, at: Seen, boundary: (b: Boundary) => void, effect: () => Promise<Outcome>): Promise<Outcome> {
    boundary('before-effect');
    const count = (code: string): void => this.o.metrics?.inc('pressluft_provider_calls_total', { step: stepName, code }, 1, 'Provider steps by outcome code');
    try {
      const outcome = await effect();
      count('ok');
      return outcome;
    } catch (e) {
      count(e instanceof ProviderError ? e.code : 'UNEXPECTED');
      if (!(e instanceof ProviderError)) throw e;
      this.o.logger.warn({ nodeId, jobId: step.jobId, code: e.code, retryable: e.retryable, details: e.details }, 'saga: provider error');
      if (e.retryAfterMs !== undefined && e.retryable) return { kind: 'wait', delayMs: Math.max(e.retryAfterMs, 100), reason: e.code };
      await this.recordFailure(nodeId, { jobId: step.jobId, attempt: step.attempt, step: stepName }, e.code, e.message, e.retryable, at);
      return { kind: 'recorded' };
    }
  }

  private recordFailure(nodeId: string, f: { jobId: string; attempt: number; step: string }, errorCode: string, errorMessage: string, retryable: boolean, at: Seen): Promise<unknown> {
    // One instant for the event's time and the retry's base, so runAfter - occurredAt is exactly the backoff.
    const now = this.isoNow();
    return this.record(
      nodeId,
      { type: 'RecordStepFailure', jobId: f.jobId, attempt: f.attempt, step: f.step, errorCode, errorMessage, retryable, now },
      `${f.jobId}:${f.attempt}:failed`,
      at,
      now,
    );
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString();
  }

  /**
   * The long step. The message that carries AnsibleStarted stays unacked while Ansible runs,
   * with working() heartbeats: that is the lease, so no second worker starts the same run.
   * A watcher aborts the run (killing its process group) when the job is cancelled or failed meanwhile.
   */
  private async runAnsible(nodeId: string, step: Extract<Step, { kind: 'runAnsible' }>, s: NodeState, m: JsMsg, boundary: (b: Boundary) => void): Promise<Outcome> {
    const abort = new AbortController();
    this.running.add(abort);
    const watcher = setInterval(() => {
      void this.stillOurs(nodeId, m.seq, step).then((ours) => ours || abort.abort(), () => undefined);
    }, this.o.watchIntervalMs ?? 500);
    boundary('before-effect');
    try {
      const progressSubject = `${this.o.store.opts.subjectPrefix}.progress.${step.jobId}`;
      const result = await this.o.runner.run({
        playbook: this.o.playbook,
        node: { host: step.host, port: step.port, user: step.user, connection: this.o.targetConnection ?? 'ssh' },
        vars: { ...this.o.ansibleVars, pressluft_node_id: nodeId, pressluft_node_name: s.spec!.name, pressluft_job_id: step.jobId },
        privateKey: this.o.keyPair.privateKey,
        secrets: [this.o.keyPair.privateKey],
        timeoutMs: step.timeoutMs,
        signal: abort.signal,
        onProgress: (p: TaskProgress) => this.o.store.nc.publish(progressSubject, JSON.stringify({ ...p, jobId: step.jobId, attempt: step.attempt })),
      });
      boundary('after-effect');
      // Aborted: the job was cancelled or this worker is stopping; the newer state decides what comes next.
      if (abort.signal.aborted) return { kind: 'wait', delayMs: 0, reason: 'ansible aborted' };
      const finishedAt = this.isoNow();
      await this.record(
        nodeId,
        { type: 'RecordAnsibleResult', jobId: step.jobId, attempt: step.attempt, result: { ...result, errorCode: result.errorCode, finishedAt } },
        `${step.jobId}:${step.attempt}:ansible_result`,
        { state: s, version: m.seq },
        finishedAt,
      );
      return { kind: 'recorded' };
    } finally {
      clearInterval(watcher);
      this.running.delete(abort);
    }
  }

  private async stillOurs(nodeId: string, seq: number, step: { jobId: string; attempt: number }): Promise<boolean> {
    if (this.stopping) return false;
    if ((await this.o.store.version(nodeId)) === seq) return true;
    const { state } = await this.repo.load(nodeId);
    const job = state.jobs[step.jobId];
    return job?.status === 'running' && job.attempt === step.attempt && !job.cancelRequested;
  }

  /** A message that exhausted max_deliver is a stuck or poisoned step: fail its job visibly. */
  private async failExhausted(seq: number, deliveries: number): Promise<void> {
    const msg = await this.o.store.jsm.direct.getMessage(this.o.store.streamName, { seq });
    if (!msg) return;
    const nodeId = this.o.store.streamIdOf(msg.subject);
    const { state, version } = await this.repo.load(nodeId);
    const job = state.currentJobId ? state.jobs[state.currentJobId] : undefined;
    if (version !== seq || !job || (job.status !== 'running' && job.status !== 'queued')) return;
    const ctx: CommandContext = { actor: 'saga', causationId: String(seq), now: this.isoNow(), messageId: `${job.jobId}:exhausted:${seq}` };
    const reason = `the step at position ${seq} was delivered ${deliveries} times without completing`;
    // A queued job has no attempt running; start one so that the failure is recorded against it.
    if (job.status === 'queued') {
      await handleCommand(this.repo, nodeId, { type: 'StartAttempt', jobId: job.jobId }, { ...ctx, messageId: `${job.jobId}:exhausted-start:${seq}` });
    }
    const attempt = job.status === 'queued' ? job.attempt + 1 : job.attempt;
    await handleCommand(
      this.repo,
      nodeId,
      { type: 'RecordStepFailure', jobId: job.jobId, attempt, step: 'saga', errorCode: 'STEP_DELIVERY_EXHAUSTED', errorMessage: reason, retryable: false, now: ctx.now },
      ctx,
    ).catch((e: unknown) => {
      if (!(e instanceof StaleStep)) throw e;
    });
  }
}

const isLoopback = (host: string): boolean => host.startsWith('127.') || host === '::1' || host === 'localhost';

/** True when something accepts TCP on host:port within the timeout: sshd is up. */
export const tcpAccepts = (host: string, port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
