import { ProviderError, type ProviderErrorCode } from '../provider-port.ts';

/** Hetzner's rate-limit headers; `resetAt` is unix seconds, as Hetzner sends it. */
export interface RateLimitInfo {
  limit: number | null;
  remaining: number | null;
  resetAt: number | null;
}

/** Everything Hetzner told us about a failed call. Never holds the token: it is built from the response only. */
export interface HetznerErrorInfo {
  method: string;
  path: string;
  /** Null when no response arrived (timeout, dropped connection). */
  httpStatus: number | null;
  apiCode: string | null;
  apiMessage: string;
  apiDetails: unknown;
  correlationId: string | null;
  rateLimit: RateLimitInfo | null;
  /** True when the request may have taken effect although we saw no answer: look up before repeating it. */
  uncertain: boolean;
}

/** A 423 says "an action is running"; Hetzner gives no time, so we come back after a few seconds. */
export const LOCKED_RETRY_AFTER_MS = 3_000;
/** 409 conflict: the resource changed under us; a short pause is enough. */
export const CONFLICT_RETRY_AFTER_MS = 1_000;
/** A 429 without a usable RateLimit-Reset still must not be retried at once. */
export const RATE_LIMIT_FALLBACK_MS = 1_000;

export class HetznerApiError extends ProviderError {
  readonly httpStatus: number | null;
  readonly apiCode: string | null;
  readonly apiMessage: string;
  readonly apiDetails: unknown;
  readonly correlationId: string | null;
  readonly rateLimit: RateLimitInfo | null;
  readonly uncertain: boolean;

  constructor(code: ProviderErrorCode, message: string, retryable: boolean, info: HetznerErrorInfo, retryAfterMs?: number) {
    // details is the JSON-safe copy that can go into an event or a log line.
    super(code, message, retryable, { ...info }, retryAfterMs);
    this.httpStatus = info.httpStatus;
    this.apiCode = info.apiCode;
    this.apiMessage = info.apiMessage;
    this.apiDetails = info.apiDetails;
    this.correlationId = info.correlationId;
    this.rateLimit = info.rateLimit;
    this.uncertain = info.uncertain;
  }
}

export const isHetznerApiError = (e: unknown): e is HetznerApiError => e instanceof HetznerApiError;

interface Classification {
  code: ProviderErrorCode;
  retryable: boolean;
  retryAfterMs?: number;
}

const headerInt = (headers: Headers, name: string): number | null => {
  const raw = headers.get(name);
  if (raw === null || !/^\d+$/.test(raw.trim())) return null;
  return Number(raw);
};

export const parseRateLimit = (headers: Headers): RateLimitInfo | null => {
  const info = {
    limit: headerInt(headers, 'RateLimit-Limit'),
    remaining: headerInt(headers, 'RateLimit-Remaining'),
    resetAt: headerInt(headers, 'RateLimit-Reset'),
  };
  return info.limit === null && info.remaining === null && info.resetAt === null ? null : info;
};

/** Milliseconds until RateLimit-Reset (unix seconds), never negative. */
export const msUntilReset = (rateLimit: RateLimitInfo | null, nowMs: number): number =>
  rateLimit?.resetAt == null ? RATE_LIMIT_FALLBACK_MS : Math.max(0, rateLimit.resetAt * 1000 - nowMs);

/**
 * Maps Hetzner's status and error code onto our stable codes (docs/providers.md, "Hetzner API facts", "Errors").
 * 404 and uniqueness_error depend on the call; callers that care (getServer, create) translate them.
 */
export const classifyHttpError = (
  httpStatus: number,
  apiCode: string | null,
  rateLimit: RateLimitInfo | null,
  nowMs: number,
): Classification => {
  switch (httpStatus) {
    case 401:
      return { code: 'PROVIDER_AUTH_FAILED', retryable: false };
    case 403:
      if (apiCode === 'resource_limit_exceeded') return { code: 'PROVIDER_QUOTA_EXCEEDED', retryable: false };
      // Maintenance ends by itself; forbidden and token_readonly need a human.
      if (apiCode === 'maintenance') return { code: 'PROVIDER_UNAVAILABLE', retryable: true };
      return { code: 'PROVIDER_AUTH_FAILED', retryable: false };
    case 409:
      if (apiCode === 'conflict') return { code: 'PROVIDER_LOCKED', retryable: true, retryAfterMs: CONFLICT_RETRY_AFTER_MS };
      return { code: 'PROVIDER_INVALID_REQUEST', retryable: false };
    case 412:
      return { code: 'PROVIDER_RESOURCE_UNAVAILABLE', retryable: true };
    case 423:
      return { code: 'PROVIDER_LOCKED', retryable: true, retryAfterMs: LOCKED_RETRY_AFTER_MS };
    case 429:
      return { code: 'PROVIDER_RATE_LIMITED', retryable: true, retryAfterMs: msUntilReset(rateLimit, nowMs) };
    default:
      if (httpStatus >= 500) return { code: 'PROVIDER_UNAVAILABLE', retryable: true };
      return { code: 'PROVIDER_INVALID_REQUEST', retryable: false };
  }
};
