// Live read-model views without a new endpoint: a long poll on read-your-writes. A query with
// ?minPosition=<checkpoint + 1> answers as soon as the projector passes it, or after the API's
// bound (5 s) with X-Pressluft-Stale, which here only means "nothing new" (ADR 0051).

import { api, withQuery, isAbort } from './api.js';
import { sleep } from './dom.js';

/**
 * Calls onData(data) with each new answer of `path` until the signal aborts. Errors go to
 * onError(err), then it tries again; a 401 stops it (the app asks for the token again).
 */
export const follow = async (path, { signal, onData, onError, query = {} }) => {
  let checkpoint = null;
  while (!signal.aborted) {
    try {
      const res = await api(withQuery(path, { ...query, minPosition: checkpoint === null ? undefined : checkpoint + 1 }), { signal });
      // A stale answer to the long poll is the same data as before: only a moved checkpoint is news.
      if (!(res.stale && res.checkpoint === checkpoint)) await onData(res.data, res);
      if (res.checkpoint !== null) checkpoint = res.checkpoint;
    } catch (e) {
      if (isAbort(e) || signal.aborted) return;
      onError?.(e);
      if (e.status === 401) return;
      await sleep(2000, signal);
    }
  }
};
