import type { Delivery } from '../eventstore/durable-consumers.ts';
import type { Deliveries, EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';

/** What to do with a delivered message once its handler is done. */
export type Verdict = { kind: 'ack' } | { kind: 'nak'; delayMs: number };

/** One delivery as a handler sees it: which node, and a claim on that node for this process. */
export interface Claimable {
  nodeId: string;
  /** Marks the node busy in this process; false when another delivery of the node is being handled here. */
  claim(): boolean;
}

export interface SagaConsumerOptions {
  store: EventStore;
  name: string;
  ackWaitMs: number;
  maxDeliver: number;
  concurrency: number;
  logger: Logger;
  /** The nak delay after an unexpected error, by delivery count: max_deliver then turns a poison message into a visible failure. */
  retryDelayMs: (deliveryCount: number) => number;
  /** Called when the loop ended without stop(). */
  onLoopEnded?: () => void;
}

/**
 * The consumer protocol: one durable pull consumer shared by every worker process, a bounded
 * number of deliveries in flight, a heartbeat that keeps each message ours while it is handled,
 * a per-node busy mark, and the ack or nak the handler's verdict asks for.
 */
export class SagaConsumer {
  private readonly inFlight = new Set<Promise<void>>();
  /** Nodes this process is acting on now: a redelivery that overtakes a slow heartbeat must not start the step twice. */
  private readonly busy = new Set<string>();
  private messages: Deliveries | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private running = false;

  constructor(private readonly o: SagaConsumerOptions) {}

  /** True while the consume loop runs; false before start, after stop, and when the loop died. */
  get alive(): boolean {
    return this.running;
  }

  async start(handler: (d: Delivery, c: Claimable) => Promise<Verdict>): Promise<void> {
    const { store, name, ackWaitMs, maxDeliver } = this.o;
    // Never a backoff array (the store asserts it): it would distort nak(delay).
    await store.ensureDurableConsumer({ name, filterSubject: store.allSubjects, ackWaitMs, maxDeliver, maxAckPending: 10_000 });
    const messages = await store.consume(name, { maxMessages: this.o.concurrency });
    this.messages = messages;
    this.running = true;
    this.loop = (async () => {
      try {
        for await (const m of messages) {
          if (this.stopping) break;
          const work = this.handle(m, handler).finally(() => this.inFlight.delete(work));
          this.inFlight.add(work);
          while (this.inFlight.size >= this.o.concurrency) await Promise.race(this.inFlight);
        }
      } catch (e) {
        this.o.logger.error({ err: e }, 'saga consumer loop failed');
      } finally {
        this.running = false;
        if (!this.stopping) {
          this.o.logger.error({ consumer: name }, 'saga consumer loop ended unexpectedly: this worker no longer acts on events');
          this.o.onLoopEnded?.();
        }
      }
    })();
  }

  /**
   * Stops taking deliveries and waits for the ones in flight, at most `graceMs` in all (closing the
   * subscription included); false when that ran out. Those still running come back to another worker after the ack wait.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    const drained = (async () => {
      await this.messages?.close();
      await this.loop;
      await Promise.allSettled([...this.inFlight]);
      return true as const;
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)));
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async handle(d: Delivery, handler: (d: Delivery, c: Claimable) => Promise<Verdict>): Promise<void> {
    const nodeId = this.o.store.streamIdOf(d.subject);
    // working() keeps the message ours while a step runs; if this worker dies, it comes back after ack_wait.
    const heartbeat = setInterval(() => d.working(), Math.max(250, Math.floor(this.o.ackWaitMs / 3)));
    let claimed = false;
    const claim = (): boolean => {
      if (this.busy.has(nodeId)) return false;
      this.busy.add(nodeId);
      claimed = true;
      return true;
    };
    try {
      const verdict = await handler(d, { nodeId, claim });
      if (verdict.kind === 'ack') d.ack();
      else d.nak(verdict.delayMs);
    } catch (e) {
      // Unexpected: leave it to redelivery with a growing delay.
      this.o.logger.error({ nodeId, position: d.seq, err: e }, 'step failed unexpectedly');
      d.nak(this.o.retryDelayMs(d.info.deliveryCount));
    } finally {
      clearInterval(heartbeat);
      if (claimed) this.busy.delete(nodeId);
    }
  }
}
