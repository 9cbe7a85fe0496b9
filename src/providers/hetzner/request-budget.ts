import { setTimeout as sleep } from 'node:timers/promises';
import type { RateLimitInfo } from './hetzner-error.ts';

/** How often callers look again while the first request is still out. */
const PROBE_WAIT_MS = 20;

/** Why a request was held back instead of sent: the wait for a token would exceed the caller's bound. */
export class BudgetExhausted extends Error {
  constructor(readonly waitMs: number, readonly rateLimit: RateLimitInfo) {
    super(`Hetzner rate limit: next request possible in ${waitMs} ms`);
  }
}

/**
 * The client's picture of Hetzner's token bucket (docs/providers.md, "Hetzner API facts", "Rate limit"),
 * fed by every answer's RateLimit-* headers and shared by every call of one client, so a process
 * never sends a request it knows will be refused. Callers take turns (FIFO): none is starved.
 */
export class RequestBudget {
  #limit: number | null = null;
  /** Estimated tokens at #at; Infinity until Hetzner has told us anything. */
  #tokens = Number.POSITIVE_INFINITY;
  #at = 0;
  /** Refill per ms, learned from (limit − remaining) / (reset − now); null until a deficit shows it. */
  #perMs: number | null = null;
  #resetAtMs: number | null = null;
  #inFlight = 0;
  #turns: Promise<void> = Promise.resolve();

  constructor(private readonly now: () => number = Date.now) {}

  /** Waits for this caller's turn and a token; throws BudgetExhausted rather than wait longer than maxWaitMs. */
  acquire(maxWaitMs: number): Promise<void> {
    const turn = this.#turns.then(() => this.#take(maxWaitMs));
    this.#turns = turn.catch(() => undefined);
    return turn;
  }

  /** Every request that acquired must settle, with the headers if an answer came. */
  settle(info: RateLimitInfo | null, refused: boolean): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    const now = this.now();
    if (info?.limit != null) this.#limit = info.limit;
    if (info?.resetAt != null) this.#resetAtMs = info.resetAt * 1000;
    if (info?.remaining == null) {
      if (refused) this.#set(-this.#inFlight, now);
      return;
    }
    const deficit = (this.#limit ?? info.remaining) - info.remaining;
    // Reset is when the bucket is full again; one token of deficit is too coarse against whole seconds.
    if (deficit >= 2 && this.#resetAtMs !== null && this.#resetAtMs > now) this.#perMs = deficit / (this.#resetAtMs - now);
    // Requests still in flight may not be counted in `remaining` yet: assume they are not.
    this.#set((refused ? 0 : info.remaining) - this.#inFlight, now);
  }

  /** 0 when a request may go now; otherwise the wait for the next token. */
  msUntilToken(): number {
    const now = this.now();
    const tokens = this.#estimate(now);
    // Nothing known yet: one request goes first and brings the headers; the rest wait for them.
    if (tokens === Number.POSITIVE_INFINITY) return this.#inFlight === 0 ? 0 : PROBE_WAIT_MS;
    if (tokens >= 1) return 0;
    if (this.#perMs !== null) return Math.ceil((1 - tokens) / this.#perMs);
    // Refill rate unknown: the bucket is full at RateLimit-Reset; without one, a second's pause.
    return this.#resetAtMs !== null ? Math.max(1, this.#resetAtMs - now) : 1_000;
  }

  snapshot(): RateLimitInfo {
    const tokens = this.#estimate(this.now());
    return {
      limit: this.#limit,
      remaining: Number.isFinite(tokens) ? Math.max(0, Math.floor(tokens)) : null,
      resetAt: this.#resetAtMs === null ? null : Math.ceil(this.#resetAtMs / 1000),
    };
  }

  async #take(maxWaitMs: number): Promise<void> {
    for (;;) {
      const waitMs = this.msUntilToken();
      if (waitMs === 0) break;
      if (waitMs > maxWaitMs) throw new BudgetExhausted(waitMs, this.snapshot());
      await sleep(waitMs);
    }
    const now = this.now();
    this.#set(this.#estimate(now) - 1, now);
    this.#inFlight += 1;
  }

  #estimate(now: number): number {
    if (!Number.isFinite(this.#tokens)) return this.#tokens;
    const cap = this.#limit ?? Number.POSITIVE_INFINITY;
    if (this.#perMs !== null) return Math.min(cap, this.#tokens + (now - this.#at) * this.#perMs);
    if (this.#resetAtMs !== null && now >= this.#resetAtMs) return cap;
    return this.#tokens;
  }

  #set(tokens: number, now: number): void {
    this.#tokens = tokens;
    this.#at = now;
  }
}
