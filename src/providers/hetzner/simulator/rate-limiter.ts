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

  constructor(readonly config: RateLimitConfig, now: number) {
    this.#tokens = config.limit;
    this.#at = now;
  }

  take(now: number): RateLimitVerdict {
    const { limit, refillPerSecond } = this.config;
    this.#tokens = Math.min(limit, this.#tokens + ((now - this.#at) / 1000) * refillPerSecond);
    this.#at = now;
    const allowed = this.#tokens >= 1;
    if (allowed) this.#tokens -= 1;
    const fullAtMs = now + ((limit - this.#tokens) / refillPerSecond) * 1000;
    return {
      allowed,
      headers: {
        'RateLimit-Limit': String(limit),
        'RateLimit-Remaining': String(Math.floor(this.#tokens)),
        'RateLimit-Reset': String(Math.ceil(fullAtMs / 1000)),
      },
    };
  }
}
