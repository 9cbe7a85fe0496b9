// The only way the console talks to the control plane: the API with the bearer token.
// The token lives in sessionStorage (this tab only, gone when it closes). It never goes into a
// URL or a cookie, so it does not leak into history, logs or Referer headers.

const TOKEN_KEY = 'pressluft.apiToken';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An API answer that is not 2xx, with its stable code verbatim; `network` when there was no answer. */
export class ApiError extends Error {
  constructor(status, code, message, details, stale = false) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    /** A 404 with X-Pressluft-Stale means "not projected yet", not "does not exist" (ADR 0040). */
    this.stale = stale;
  }
}

/** Fired when the API refuses the token: the app drops it and asks again. */
export const UNAUTHORIZED = 'pressluft:unauthorized';

const errorFrom = async (res) => {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not our error shape (a proxy, say): the status is all there is.
  }
  const e = body?.error;
  return new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? res.statusText, e?.details, res.headers.get('x-pressluft-stale') === 'true');
};

/**
 * fetch() with the token. Resolves with the Response when it is 2xx; otherwise throws ApiError.
 * `tokenOverride` checks a token before it is kept.
 */
export const request = async (path, { method = 'GET', body, accept = 'application/json', headers = {}, signal, tokenOverride } = {}) => {
  const t = tokenOverride ?? token.get();
  const h = { accept, ...headers };
  if (t) h.authorization = `Bearer ${t}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, 'network', `the control plane did not answer (${e.message})`);
  }
  if (res.ok) return res;
  const err = await errorFrom(res);
  if (res.status === 401 && tokenOverride === undefined) {
    token.clear();
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: err }));
  }
  throw err;
};

/**
 * A JSON call. Answers { data, stale, checkpoint }: `stale` is X-Pressluft-Stale (the read model
 * had not reached ?minPosition= within its bound), `checkpoint` is X-Pressluft-Checkpoint.
 */
export const api = async (path, opts = {}) => {
  const res = await request(path, opts);
  const checkpoint = res.headers.get('x-pressluft-checkpoint');
  return { data: await res.json(), stale: res.headers.get('x-pressluft-stale') === 'true', checkpoint: checkpoint === null ? null : Number(checkpoint) };
};

/** Builds a path with a query string from the defined values only. */
export const withQuery = (path, query) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
};

export const isAbort = (e) => e?.name === 'AbortError';
