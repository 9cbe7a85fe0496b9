import type { FastifyReply } from 'fastify';

/**
 * A Server-Sent Events response on a hijacked reply. Open streams are tracked so that the server
 * can end them on close instead of waiting for clients to hang up.
 */
export class SseStream {
  private heartbeat: NodeJS.Timeout;
  private ended = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly reply: FastifyReply,
    heartbeatMs: number,
    private readonly open: Set<SseStream>,
  ) {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx buffer responses unless told not to.
      'x-accel-buffering': 'no',
    });
    reply.raw.flushHeaders();
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), heartbeatMs);
    reply.raw.on('close', () => this.end());
    open.add(this);
  }

  get closed(): boolean {
    return this.ended;
  }

  send(event: string, data: unknown, id?: number): void {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  onClose(f: () => void): void {
    if (this.ended) f();
    else this.closeListeners.push(f);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    this.open.delete(this);
    for (const f of this.closeListeners) f();
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }

  private write(chunk: string): void {
    if (!this.ended && !this.reply.raw.writableEnded) this.reply.raw.write(chunk);
  }
}

/** A wake-up for a loop that polls: resolves on notify() or after a timeout, whichever is first. */
export class WakeSignal {
  private resolve: (() => void) | null = null;
  private pending = false;

  notify(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((r) => {
      const done = (): void => {
        clearTimeout(timer);
        this.resolve = null;
        r();
      };
      const timer = setTimeout(done, timeoutMs);
      this.resolve = done;
    });
  }
}
