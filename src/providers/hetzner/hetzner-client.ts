import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import type { Logger } from '../../logging/logger.ts';
import {
  actionListSchema,
  actionResponseSchema,
  createServerResponseSchema,
  errorEnvelopeSchema,
  serverListSchema,
  serverResponseSchema,
  sshKeyListSchema,
  sshKeyResponseSchema,
  type CreateServerRequest,
  type CreateSshKeyRequest,
  type HetznerAction,
  type HetznerServer,
  type HetznerSshKey,
  type Pagination,
} from './hetzner-schemas.ts';
import { classifyHttpError, HetznerApiError, parseRateLimit, type HetznerErrorInfo } from './hetzner-error.ts';
import { BudgetExhausted, RequestBudget } from './request-budget.ts';

export interface HetznerClientOptions {
  /** Base URL including the version, e.g. `http://127.0.0.1:4010/v1`. */
  endpoint: string;
  token: string;
  /** Per request, including reading the body. */
  timeoutMs: number;
  logger: Logger;
  /** A request waits for a rate-limit token at most this long; a longer wait goes to the caller unsent. */
  maxRateLimitWaitMs?: number;
  /** How many times a request refused with 429 is sent again before the 429 goes to the caller. Default 5. */
  rateLimitRetries?: number;
  /** Injected for tests; default Date.now. */
  now?: () => number;
}

type Method = 'GET' | 'POST' | 'DELETE';
type QueryValue = string | number | readonly (string | number)[] | undefined;
export type Query = Record<string, QueryValue>;

/** A request refused with 429 goes again after the next token this many times; enough for any refusal pattern of every 2nd request. */
export const RATE_LIMIT_RETRIES = 5;

/** Hetzner caps per_page at 50; asking for the cap keeps list calls (and rate-limit use) minimal. */
const PER_PAGE = 50;
/** GET /actions answers at most one page of 50, so we ask for at most 50 ids per call. */
const ACTION_IDS_PER_CALL = PER_PAGE;

/**
 * A small typed client for the Hetzner Cloud API on Node's fetch.
 * It never retries a POST after an uncertain outcome: Hetzner has no idempotency key, so the caller must
 * look up before it creates again (docs/providers.md, "Hetzner API facts", "Never retry POST /servers blindly").
 * A 429 is not uncertain: the request was refused before it did anything, so any method goes again
 * straight away after the next token, and a create never repeats its lookups for a 429.
 */
export class HetznerClient {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #maxRateLimitWaitMs: number;
  readonly #rateLimitRetries: number;
  /** One per client, and the control plane makes one client: every provider call of the process shares it. */
  readonly budget: RequestBudget;

  constructor(options: HetznerClientOptions) {
    this.#base = options.endpoint.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
    this.#maxRateLimitWaitMs = options.maxRateLimitWaitMs ?? 60_000;
    this.#rateLimitRetries = options.rateLimitRetries ?? RATE_LIMIT_RETRIES;
    this.budget = new RequestBudget(options.now);
  }

  listSshKeys(filter: { fingerprint?: string; name?: string; label_selector?: string }): Promise<HetznerSshKey[]> {
    return this.#listAll('/ssh_keys', filter, sshKeyListSchema, (r) => r.ssh_keys);
  }

  async createSshKey(body: CreateSshKeyRequest): Promise<HetznerSshKey> {
    return (await this.request('POST', '/ssh_keys', sshKeyResponseSchema, { body })).ssh_key;
  }

  listServers(filter: { name?: string; label_selector?: string }): Promise<HetznerServer[]> {
    return this.#listAll('/servers', filter, serverListSchema, (r) => r.servers);
  }

  async getServer(id: number): Promise<HetznerServer> {
    return (await this.request('GET', `/servers/${id}`, serverResponseSchema)).server;
  }

  createServer(body: CreateServerRequest): Promise<z.infer<typeof createServerResponseSchema>> {
    return this.request('POST', '/servers', createServerResponseSchema, { body });
  }

  async deleteServer(id: number): Promise<HetznerAction> {
    return (await this.request('DELETE', `/servers/${id}`, actionResponseSchema)).action;
  }

  /** Listing a project's actions is gone (2025-01-30); we can only ask for ids we hold. */
  async getActions(ids: readonly number[]): Promise<HetznerAction[]> {
    const out: HetznerAction[] = [];
    for (let i = 0; i < ids.length; i += ACTION_IDS_PER_CALL) {
      const chunk = ids.slice(i, i + ACTION_IDS_PER_CALL);
      out.push(...(await this.#listAll('/actions', { id: chunk }, actionListSchema, (r) => r.actions)));
    }
    return out;
  }

  listServerActions(serverId: number): Promise<HetznerAction[]> {
    return this.#listAll(`/servers/${serverId}/actions`, {}, actionListSchema, (r) => r.actions);
  }

  /** Follows meta.pagination.next_page until the last page. */
  async #listAll<S extends z.ZodType<{ meta: { pagination: Pagination } }>, T>(
    path: string,
    query: Query,
    schema: S,
    items: (page: z.infer<S>) => T[],
  ): Promise<T[]> {
    const out: T[] = [];
    let page: number | null = 1;
    while (page !== null) {
      const res: z.infer<S> = await this.request('GET', path, schema, { query: { ...query, page, per_page: PER_PAGE } });
      out.push(...items(res));
      page = res.meta.pagination.next_page;
    }
    return out;
  }

  /**
   * One validated call, sent only when the shared budget holds a token. A request refused with 429 is
   * sent again after the next token (bounded); nothing else is retried here.
   */
  async request<S extends z.ZodType>(method: Method, path: string, schema: S, opts: { query?: Query; body?: unknown } = {}): Promise<z.infer<S>> {
    for (let retries = 0; ; retries++) {
      try {
        await this.#acquire(method, path);
        return await this.#once(method, path, schema, opts);
      } catch (e) {
        const refused = e instanceof HetznerApiError && e.httpStatus === 429;
        if (!refused || retries >= this.#rateLimitRetries) throw e;
        this.#logger.info({ method, path, retryAfterMs: e.retryAfterMs, correlationId: e.correlationId }, 'hetzner rate limited; sending again after the next token');
      }
    }
  }

  async #acquire(method: Method, path: string): Promise<void> {
    try {
      await this.budget.acquire(this.#maxRateLimitWaitMs);
    } catch (e) {
      if (!(e instanceof BudgetExhausted)) throw e;
      // Known to be refused: the caller gets the 429 it would have got, without spending a request.
      throw new HetznerApiError('PROVIDER_RATE_LIMITED', `Hetzner ${method} ${path}: not sent, ${e.message}`, true, {
        method, path, httpStatus: null, apiCode: null, apiMessage: e.message, apiDetails: null,
        correlationId: null, rateLimit: e.rateLimit, uncertain: false,
      }, e.waitMs);
    }
  }

  async #once<S extends z.ZodType>(method: Method, path: string, schema: S, opts: { query?: Query; body?: unknown }): Promise<z.infer<S>> {
    const url = this.#url(path, opts.query);
    const started = Date.now();
    const base: HetznerErrorInfo = {
      method, path, httpStatus: null, apiCode: null, apiMessage: '', apiDetails: null,
      correlationId: null, rateLimit: null, uncertain: false,
    };

    let status: number;
    let headers: Headers;
    let settled = false;
    let text: string;
    // Not AbortSignal.timeout: its timer would outlive every request by the whole timeout.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    try {
      const res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          accept: 'application/json',
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: timeout.signal,
      });
      status = res.status;
      headers = res.headers;
      this.budget.settle(parseRateLimit(headers), status === 429);
      settled = true;
      text = await res.text();
    } catch (e) {
      if (!settled) this.budget.settle(null, false);
      // No answer: a mutation may or may not have happened.
      const timedOut = timeout.signal.aborted;
      const reason = timedOut ? `timed out after ${this.#timeoutMs} ms` : `network error: ${describeCause(e)}`;
      const err = new HetznerApiError('PROVIDER_UNAVAILABLE', `Hetzner ${method} ${path}: ${reason}`, true, {
        ...base, apiMessage: reason, uncertain: method !== 'GET',
      });
      this.#logger.warn({ method, path, code: err.code, uncertain: err.uncertain, ms: Date.now() - started }, 'hetzner request failed without response');
      throw err;
    } finally {
      clearTimeout(timer);
    }

    const info: HetznerErrorInfo = {
      ...base,
      httpStatus: status,
      correlationId: headers.get('x-correlation-id'),
      rateLimit: parseRateLimit(headers),
    };
    const json = parseJson(text);
    this.#logger.debug(
      { method, path, status, correlationId: info.correlationId, rateLimitRemaining: info.rateLimit?.remaining, ms: Date.now() - started },
      'hetzner request',
    );

    if (status < 200 || status > 299) {
      const envelope = errorEnvelopeSchema.safeParse(json);
      const apiCode = envelope.success ? envelope.data.error.code : null;
      const apiMessage = envelope.success ? envelope.data.error.message : `HTTP ${status} without an error envelope`;
      const c = classifyHttpError(status, apiCode, info.rateLimit, Date.now());
      const err = new HetznerApiError(
        c.code,
        `Hetzner ${method} ${path}: ${status} ${apiCode ?? 'unknown'}: ${apiMessage}`,
        c.retryable,
        { ...info, apiCode, apiMessage, apiDetails: envelope.success ? (envelope.data.error.details ?? null) : null, uncertain: status >= 500 && method !== 'GET' },
        // After a 429, come back when the next token is due, not when the whole bucket is full again.
        status === 429 ? Math.max(this.budget.msUntilToken(), 1) : c.retryAfterMs,
      );
      this.#logger.warn({ method, path, status, apiCode, code: err.code, correlationId: info.correlationId, retryAfterMs: err.retryAfterMs }, 'hetzner error response');
      throw err;
    }

    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      throw new HetznerApiError('PROVIDER_BAD_RESPONSE', `Hetzner ${method} ${path}: response failed validation`, false, {
        ...info, apiMessage: 'response failed validation', apiDetails: { issues },
      });
    }
    return parsed.data;
  }

  #url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
    }
    const qs = params.toString();
    return `${this.#base}${path}${qs ? `?${qs}` : ''}`;
  }
}

const parseJson = (text: string): unknown => {
  try {
    return text.length === 0 ? null : JSON.parse(text);
  } catch {
    return null;
  }
};

/** undici hides the reason in `cause` (e.g. ECONNRESET, "other side closed"). */
const describeCause = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${(e.cause as NodeJS.ErrnoException).code ?? e.cause.message}` : '';
  return `${e.message}${cause}`;
};
