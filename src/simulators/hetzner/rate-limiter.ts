/**
 * Hetzner's rate limit is a token bucket: `limit` requests, refilling at a steady rate
 * (3600 per hour, 1 per second, per project). RateLimit-Reset is when the bucket is full again.
 */
export interface RateLimitConfig {
  limit: number;
  refillPerSecond: number;
}

export interface RateLimitVerdict {
  allowed: boolean;
  headers: { 'RateLimit-Limit': string; 'RateLimit-Remaining': string; 'RateLimit-Reset': string };
}

export class RateLimiter {
  #tokens: number;
  #at: number;
  #config: RateLimitConfig;
  /** Fault: every N-th request is refused with 429 whatever the bucket holds (null = off). */
  #refuseEveryNth: number | null = null;
  #seen = 0;

  constructor(config: RateLimitConfig, now: number, refuseEveryNth: number | null = null) {
    this.#config = config;
    this.#tokens = config.limit;
    this.#at = now;
    this.#refuseEveryNth = refuseEveryNth;
  }

  get config(): RateLimitConfig {
    return this.#config;
  }

  /** A new bucket, full. */
  configure(config: RateLimitConfig, now: number): void {
    this.#config = config;
    this.#tokens = config.limit;
    this.#at = now;
  }

  /** Refuse every n-th request from now on (counting restarts); null turns the fault off. */
  refuseEveryNth(n: number | null): void {
    this.#refuseEveryNth = n;
    this.#seen = 0;
  }

  take(now: number): RateLimitVerdict {
    const { limit, refillPerSecond } = this.#config;
    this.#tokens = Math.min(limit, this.#tokens + ((now - this.#at) / 1000) * refillPerSecond);
    this.#at = now;
    this.#seen += 1;
    if (this.#refuseEveryNth !== null && this.#seen % this.#refuseEveryNth === 0) {
      // A stand-in that refuses by pattern says what a drained bucket says: nothing left, back in a second.
      return { allowed: false, headers: this.#headers(0, Math.ceil(now / 1000) + 1) };
    }
    const allowed = this.#tokens >= 1;
    if (allowed) this.#tokens -= 1;
    const fullAtMs = now + ((limit - this.#tokens) / refillPerSecond) * 1000;
    return { allowed, headers: this.#headers(Math.floor(this.#tokens), Math.ceil(fullAtMs / 1000)) };
  }

  #headers(remaining: number, resetAt: number): RateLimitVerdict['headers'] {
    return {
      'RateLimit-Limit': String(this.#config.limit),
      'RateLimit-Remaining': String(remaining),
      'RateLimit-Reset': String(resetAt),
    };
  }
}
