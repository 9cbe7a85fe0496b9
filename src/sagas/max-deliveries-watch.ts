import { z } from 'zod';
import type { Deliveries, EventStore } from '../eventstore/event-store.ts';
import type { Logger } from '../logging/logger.ts';

const advisorySchema = z.object({
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number().int().positive(),
  deliveries: z.number().int().positive(),
});

/** An advisory that could not be recorded is tried again after this long. */
const RETRY_MS = 1000;
const ADVISORY_ACK_WAIT_MS = 30_000;

export interface MaxDeliveriesWatchOptions {
  store: EventStore;
  consumerName: string;
  logger: Logger;
  onExhausted: (streamSeq: number, deliveries: number) => Promise<void>;
}

const decoder = new TextDecoder();
const parseJson = (data: Uint8Array): unknown => {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
};

/**
 * Turns JetStream's MAX_DELIVERIES advisory into a callback. The advisory is a plain NATS
 * message, lost if no worker listens at that moment, so the store captures it into a small
 * stream of its own, read here through a durable consumer: a worker that starts later still sees it.
 */
export class MaxDeliveriesWatch {
  private messages: Deliveries | null = null;
  private loop: Promise<void> | null = null;

  constructor(private readonly o: MaxDeliveriesWatchOptions) {}

  async start(): Promise<void> {
    const { store, consumerName, logger } = this.o;
    const { stream, subject } = await store.captureMaxDeliveries(consumerName);
    const durable = `${consumerName}-exhausted`;
    await store.ensureDurableConsumer({ name: durable, stream, filterSubject: subject, ackWaitMs: ADVISORY_ACK_WAIT_MS });
    const messages = await store.consume(durable, { stream, maxMessages: 16 });
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const parsed = advisorySchema.safeParse(parseJson(m.data));
        if (!parsed.success) {
          logger.error({ subject: m.subject }, 'unreadable MAX_DELIVERIES advisory');
          m.term();
          continue;
        }
        try {
          logger.error({ position: parsed.data.stream_seq, deliveries: parsed.data.deliveries }, 'a step exhausted its deliveries; failing its job');
          await this.o.onExhausted(parsed.data.stream_seq, parsed.data.deliveries);
          m.ack();
        } catch (e) {
          logger.error({ err: e }, 'could not record an exhausted step; will retry');
          m.nak(RETRY_MS);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }
}
