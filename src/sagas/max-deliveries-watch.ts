import { AckPolicy, DeliverPolicy, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { z } from 'zod';
import type { EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';

const advisorySchema = z.object({
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number().int().positive(),
  deliveries: z.number().int().positive(),
});

export interface MaxDeliveriesWatchOptions {
  store: EventStore;
  consumerName: string;
  logger: Logger;
  onExhausted: (streamSeq: number, deliveries: number) => Promise<void>;
}

/**
 * Turns JetStream's MAX_DELIVERIES advisory into a callback. The advisory is a plain NATS
 * message, lost if no worker listens at that moment, so it is captured into a small stream
 * of its own and read through a durable consumer: a worker that starts later still sees it.
 */
export class MaxDeliveriesWatch {
  private close: (() => Promise<unknown>) | null = null;
  private loop: Promise<void> | null = null;

  constructor(private readonly o: MaxDeliveriesWatchOptions) {}

  /** Every consumer of the event stream is captured; each watch reads its own consumer's advisories. */
  private get streamSubject(): string {
    return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.o.store.streamName}.*`;
  }

  private get subject(): string {
    return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.o.store.streamName}.${this.o.consumerName}`;
  }

  private get streamName(): string {
    return `${this.o.store.streamName}_MAX_DELIVERIES`;
  }

  async start(): Promise<void> {
    const { jsm, js } = this.o.store;
    try {
      await jsm.streams.info(this.streamName);
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== 10059) throw e;
      await jsm.streams.add({ name: this.streamName, subjects: [this.streamSubject], storage: StorageType.File, max_age: 7 * 24 * 3600 * 1e9 });
    }
    const durable = `${this.o.consumerName}-exhausted`;
    try {
      await jsm.consumers.info(this.streamName, durable);
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== 10014) throw e;
      await jsm.consumers.add(this.streamName, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: this.subject,
        ack_wait: 30_000 * 1e6,
      });
    }
    const messages = await (await js.consumers.get(this.streamName, durable)).consume({ max_messages: 16 });
    this.close = () => messages.close();
    this.loop = (async () => {
      for await (const m of messages) {
        const parsed = advisorySchema.safeParse(m.json());
        if (!parsed.success) {
          this.o.logger.error({ subject: m.subject }, 'saga: unreadable MAX_DELIVERIES advisory');
          m.term();
          continue;
        }
        try {
          this.o.logger.error({ position: parsed.data.stream_seq, deliveries: parsed.data.deliveries }, 'saga: a step exhausted its deliveries; failing its job');
          await this.o.onExhausted(parsed.data.stream_seq, parsed.data.deliveries);
          m.ack();
        } catch (e) {
          this.o.logger.error({ err: e }, 'saga: could not record an exhausted step; will retry');
          m.nak(1000);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.close?.();
    await this.loop;
  }
}
