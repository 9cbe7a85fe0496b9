import type { OutgoingHttpHeaders } from 'node:http';
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
      // What the route already set (the stale flag and checkpoint of a read behind ?minPosition=).
      ...(reply.getHeaders() as OutgoingHttpHeaders),
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

/**
 * Caps open streams per key (a job) and in total: each stream holds a reader on the log, so an
 * unbounded number of them would let one client starve the rest.
 */
export class StreamQuota {
  private readonly perKey = new Map<string, number>();
  private total = 0;

  constructor(readonly limits: { perKey: number; total: number }) {}

  /** Takes a slot and returns its release, or says which cap is reached. */
  take(key: string): { release: () => void } | { full: 'per_job' | 'total'; limit: number } {
    const n = this.perKey.get(key) ?? 0;
    if (n >= this.limits.perKey) return { full: 'per_job', limit: this.limits.perKey };
    if (this.total >= this.limits.total) return { full: 'total', limit: this.limits.total };
    this.perKey.set(key, n + 1);
    this.total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perKey.get(key) ?? 1) - 1;
        if (left === 0) this.perKey.delete(key);
        else this.perKey.set(key, left);
      },
    };
  }

  get open(): number {
    return this.total;
  }
}
