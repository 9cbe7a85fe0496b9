import type { NatsConnection } from '@nats-io/transport-node';

/** What `ping` found: the connection answers, is closed for good, or does not answer in time. */
export type PingResult = 'ok' | 'closed' | 'no_answer';

/** Subscribes to JSON messages on a core NATS subject; a message that is not JSON is dropped. Returns the unsubscribe. */
export const subscribeJson = (nc: NatsConnection, subject: string, onMessage: (raw: unknown) => void): (() => void) => {
  const sub = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) return;
      let raw: unknown;
      try {
        raw = msg.json();
      } catch {
        return;
      }
      onMessage(raw);
    },
  });
  return () => sub.unsubscribe();
};

/** A round trip to the server, bounded by `timeoutMs`. */
export const pingNats = async (nc: NatsConnection, timeoutMs: number): Promise<PingResult> => {
  if (nc.isClosed()) return 'closed';
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<PingResult>((r) => (timer = setTimeout(() => r('no_answer'), timeoutMs)));
  const answered = nc.flush().then(
    (): PingResult => 'ok',
    (): PingResult => 'no_answer',
  );
  try {
    return await Promise.race([answered, late]);
  } finally {
    clearTimeout(timer);
  }
};
