import { handleCommand } from '../commands/command-handler.ts';
import type { NodeCommand } from '../commands/node-commands.ts';
import { StaleStep } from '../commands/domain-errors.ts';
import type { LoadedNode, NodeRepository } from '../commands/node-repository.ts';
import type { AnsibleRunner } from '../ansible/runner-port.ts';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';
import { ProviderError, type ProviderPort } from '../providers/provider-port.ts';
import { pollDelayMs, type PollSchedule, type Step } from './provision-process.ts';
import type { HostKeyStore } from '../ssh-keys/host-key-store.ts';
import type { WpCliPhar } from '../wp-cli/wp-cli-phar.ts';

/** Where a worker can die relative to a step's side effect; the crash tests kill it at each one. */
export type Boundary = 'before-effect' | 'after-effect' | 'after-append';

/** Outcome of one step: recorded (a new message drives on), or come back later. */
export type Outcome = { kind: 'recorded' } | { kind: 'wait'; delayMs: number; reason: string };

export const RECORDED: Outcome = { kind: 'recorded' };

/** The two series the saga feeds; the metrics module names them. */
export interface SagaMetrics {
  observeSagaStep(labels: { step: string; outcome: string }, seconds: number): void;
  countProviderCall(labels: { step: string; code: string }): void;
}

/** What every step handler may use; one per saga. */
export interface SagaDeps {
  store: EventStore;
  repo: NodeRepository;
  provider: ProviderPort;
  runner: AnsibleRunner;
  keyPair: { publicKey: string; readonly privateKey: string };
  /** Host keys per (node, job), injected at create (ADR 0014). */
  hostKeys: HostKeyStore;
  /** The worker's playbook bundle, recorded with every run and checked against a job's expectPlaybook. */
  playbookBundle: { digest: string; version: string };
  logger: Logger;
  metrics?: SagaMetrics;
  playbook: string;
  ansibleVars: Record<string, unknown>;
  /** The verified WP-CLI phar for the wp_cli role; absent when none is configured (the simulator's default). */
  ensureWpCliPhar?: () => Promise<WpCliPhar>;
  targetConnection: 'ssh' | 'local';
  watchIntervalMs: number;
  poll: PollSchedule;
  now: () => number;
  onBoundary?: (b: Boundary, step: Step['kind'], nodeId: string) => void;
  /** Runs in flight in this process; stop() aborts them. */
  running: Set<AbortController>;
  /** Per node with a run in flight: check its lease now (a newer message for the node has arrived). */
  leaseChecks: Map<string, () => void>;
  stopping: () => boolean;
}

type JobStep = { jobId: string; attempt: number };

/**
 * The deterministic message id of a step's decision: the same step redone after a crash gets the
 * same id, so JetStream drops the second append.
 */
export const stepMessageId = (jobId: string, ...parts: Array<string | number>): string => [jobId, ...parts].join(':');

/** One step's view: the node, the state it was decided from (at the triggering message's position), and how to record. */
export class StepContext {
  constructor(
    readonly deps: SagaDeps,
    readonly nodeId: string,
    /** The state the step was decided from, at the triggering message's position. */
    readonly seen: LoadedNode,
    readonly deliveryCount: number,
    readonly stepKind: Step['kind'],
  ) {}

  get state() {
    return this.seen.state;
  }

  boundary(b: Boundary): void {
    this.deps.onBoundary?.(b, this.stepKind, this.nodeId);
  }

  isoNow(): string {
    return new Date(this.deps.now()).toISOString();
  }

  /** Nothing new yet: come back on the poll schedule. */
  poll(reason: string): Outcome {
    return { kind: 'wait', delayMs: pollDelayMs(this.deliveryCount, this.deps.poll), reason };
  }

  /** Records a step's result on the state the step was decided from; a stale step is already decided elsewhere. */
  async record(cmd: NodeCommand, messageId: string, now = this.isoNow(), at: LoadedNode = this.seen): Promise<Outcome> {
    const ctx = { actor: 'saga', causationId: String(at.version), now, messageId };
    await handleCommand(this.deps.repo, this.nodeId, cmd, ctx, { preloaded: at }).catch((e: unknown) => {
      // The state moved on (another worker, a redo): the step is already decided.
      if (!(e instanceof StaleStep)) throw e;
    });
    return RECORDED;
  }

  recordFailure(f: JobStep & { step: string }, errorCode: string, errorMessage: string, retryable: boolean): Promise<Outcome> {
    // One instant for the event's time and the retry's base, so runAfter - occurredAt is exactly the backoff.
    const now = this.isoNow();
    return this.record({ type: 'RecordStepFailure', jobId: f.jobId, attempt: f.attempt, step: f.step, errorCode, errorMessage, retryable, now }, stepMessageId(f.jobId, f.attempt, 'failed'), now);
  }

  /** Provider errors become retryable or terminal job outcomes; a provider's "come back at" becomes a wait. */
  async withProvider(step: JobStep, stepName: string, effect: () => Promise<Outcome>): Promise<Outcome> {
    this.boundary('before-effect');
    const count = (code: string): void => this.deps.metrics?.countProviderCall({ step: stepName, code });
    try {
      const outcome = await effect();
      count('ok');
      return outcome;
    } catch (e) {
      count(e instanceof ProviderError ? e.code : 'UNEXPECTED');
      if (!(e instanceof ProviderError)) throw e;
      this.deps.logger.warn({ nodeId: this.nodeId, jobId: step.jobId, code: e.code, retryable: e.retryable, details: e.details }, 'provider error');
      if (e.retryAfterMs !== undefined && e.retryable) return { kind: 'wait', delayMs: Math.max(e.retryAfterMs, 100), reason: e.code };
      return this.recordFailure({ ...step, step: stepName }, e.code, e.message, e.retryable);
    }
  }
}
