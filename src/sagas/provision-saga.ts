import { NodeRepository } from '../commands/node-repository.ts';
import { EventDecodeError } from '../events/event-codec.ts';
import type { Delivery } from '../eventstore/durable-consumers.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import type { AnsibleRunner } from '../ansible/runner-port.ts';
import type { ProviderPort } from '../providers/provider-port.ts';
import { DEFAULT_POLL, pollDelayMs, react, type PollSchedule, type Step } from './provision-process.ts';
import { MaxDeliveriesWatch } from './max-deliveries-watch.ts';
import { failExhaustedStep } from './exhausted-delivery.ts';
import { SagaConsumer, type Claimable, type Verdict } from './saga-consumer.ts';
import { StepContext, type Boundary, type SagaDeps, type SagaMetrics } from './step-context.ts';
import { runStep } from './step-handlers.ts';
import type { HostKeyStore } from '../ssh-keys/host-key-store.ts';
import type { WpCliPhar } from '../wp-cli/wp-cli-phar.ts';

export type { Boundary, SagaMetrics } from './step-context.ts';

/** How long stop() waits for steps in flight (an aborted Ansible run included) before it gives up on them. */
const STOP_GRACE_MS = 10_000;
/** A delivery read back from a replica behind it is tried again this soon. */
const STALE_READ_RETRY_MS = 100;

export interface ProvisionSagaOptions {
  store: EventStore;
  provider: ProviderPort;
  runner: AnsibleRunner;
  /** The control plane's key pair: the public half goes to the provider, the private half to Ansible for one run. */
  keyPair: { publicKey: string; readonly privateKey: string };
  /** Host keys per (node, job): every created server boots with one, every run trusts only it (ADR 0014). */
  hostKeys: HostKeyStore;
  /** The digest and version of the worker's playbook bundle (src/ansible/playbook-bundle.ts), computed once at start-up. */
  playbookBundle: { digest: string; version: string };
  logger: Logger;
  metrics?: SagaMetrics;
  playbook: string;
  /** Extra-vars every run gets, on top of the node-derived ones. */
  ansibleVars?: Record<string, unknown>;
  /** Downloads (once) and verifies the WP-CLI phar; checked before any provider call (WP_CLI_UNAVAILABLE). */
  ensureWpCliPhar?: () => Promise<WpCliPhar>;
  consumerName?: string;
  ackWaitMs?: number;
  maxDeliver?: number;
  concurrency?: number;
  poll?: PollSchedule;
  /** The consume loop ended without stop(): a process with no /healthz (a worker) must exit so its supervisor restarts it. */
  onLoopEnded?: () => void;
  /** `local` runs plays on the control plane itself; only tests use it. Default `ssh`. */
  targetConnection?: 'ssh' | 'local';
  /** How often a worker running Ansible checks its node's stream for a cancel. */
  watchIntervalMs?: number;
  /** Fault injection for tests: called at each step boundary. */
  onBoundary?: (b: Boundary, step: Step['kind'], nodeId: string) => void;
  now?: () => number;
  /** How long stop() waits for steps in flight (default 10 s). */
  stopGraceMs?: number;
}

/**
 * The node_provision saga's executor. A durable pull consumer on the event stream, shared by any
 * number of worker processes, delivers every decision. Only the message that is the node's
 * latest acts: it runs the next step through a port, appends the result with the expected
 * version and a deterministic msgID, and is acked only after the append. Older messages are
 * acked at once. So one node has one actor at a time, and a crash at any line is redone safely.
 */
export class ProvisionSaga {
  private readonly deps: SagaDeps;
  private readonly consumer: SagaConsumer;
  private readonly exhausted: MaxDeliveriesWatch;
  private readonly ackWaitMs: number;
  private stopping = false;

  constructor(private readonly o: ProvisionSagaOptions) {
    const logger = o.logger.child({ component: 'saga' });
    const consumerName = o.consumerName ?? 'pressluft-saga';
    const poll = o.poll ?? DEFAULT_POLL;
    const now = o.now ?? Date.now;
    this.ackWaitMs = o.ackWaitMs ?? 30_000;
    const repo = new NodeRepository(o.store);
    this.deps = {
      store: o.store,
      repo,
      provider: o.provider,
      runner: o.runner,
      keyPair: o.keyPair,
      hostKeys: o.hostKeys,
      playbookBundle: o.playbookBundle,
      logger,
      metrics: o.metrics,
      playbook: o.playbook,
      ansibleVars: o.ansibleVars ?? {},
      ensureWpCliPhar: o.ensureWpCliPhar,
      targetConnection: o.targetConnection ?? 'ssh',
      watchIntervalMs: o.watchIntervalMs ?? 500,
      poll,
      now,
      onBoundary: o.onBoundary,
      running: new Set(),
      leaseChecks: new Map(),
      stopping: () => this.stopping,
    };
    this.consumer = new SagaConsumer({
      store: o.store,
      name: consumerName,
      ackWaitMs: this.ackWaitMs,
      maxDeliver: o.maxDeliver ?? 500,
      concurrency: o.concurrency ?? 32,
      logger,
      retryDelayMs: (count) => pollDelayMs(count, poll),
      onLoopEnded: o.onLoopEnded,
    });
    this.exhausted = new MaxDeliveriesWatch({
      store: o.store,
      consumerName,
      logger,
      onExhausted: (seq, deliveries) => failExhaustedStep({ store: o.store, repo, now }, seq, deliveries),
    });
  }

  /** True while this worker's consume loop runs: /healthz fails when a started saga is no longer alive. */
  get alive(): boolean {
    return this.consumer.alive;
  }

  async start(): Promise<void> {
    await this.consumer.start((d, c) => this.handle(d, c));
    await this.exhausted.start();
  }

  /** Bounded: aborts running Ansible (its process group is killed) and waits at most the stop grace for steps in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    const drained = this.consumer.stop(this.o.stopGraceMs ?? STOP_GRACE_MS);
    for (const c of this.deps.running) c.abort();
    if (!(await drained)) this.deps.logger.warn('steps still in flight at stop; their messages come back to another worker after the ack wait');
    await this.exhausted.stop();
  }

  private async handle(d: Delivery, { nodeId, claim }: Claimable): Promise<Verdict> {
    const { repo, logger, metrics } = this.deps;
    let loaded;
    try {
      loaded = await repo.load(nodeId);
    } catch (e) {
      if (!(e instanceof EventDecodeError)) throw e;
      // Redelivery cannot fix a message that does not decode: ack it and say why; the node stays where it was.
      logger.error({ err: e, nodeId, subject: d.subject, position: d.seq }, 'node stream does not decode; acked without acting');
      return { kind: 'ack' };
    }
    if (loaded.version > d.seq) return { kind: 'ack' };
    // The read came from a replica behind this very message (replicated streams): acting on it would redo a recorded step.
    if (loaded.version < d.seq) return { kind: 'nak', delayMs: STALE_READ_RETRY_MS };
    if (!claim()) {
      // A newer message (a cancel, say) for a node this process is running Ansible for: the run checks its lease now, not at the next tick.
      this.deps.leaseChecks.get(nodeId)?.();
      return { kind: 'nak', delayMs: this.ackWaitMs };
    }
    const step = react(loaded.state, { nowMs: this.deps.now(), minPollIntervalMs: this.deps.poll.initialMs });
    const ctx = new StepContext(this.deps, nodeId, { state: loaded.state, version: d.seq }, d.info.deliveryCount, step.kind);
    const started = performance.now();
    const outcome = await runStep(ctx, step);
    metrics?.observeSagaStep({ step: step.kind, outcome: outcome.kind }, (performance.now() - started) / 1000);
    if (outcome.kind === 'wait') {
      logger.debug({ nodeId, reason: outcome.reason, delayMs: outcome.delayMs }, 'waiting');
      return { kind: 'nak', delayMs: outcome.delayMs };
    }
    ctx.boundary('after-append');
    return { kind: 'ack' };
  }
}
