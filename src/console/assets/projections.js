// Projections: checkpoint, log end and lag, refreshed every few seconds, and a rebuild with live
// progress and the swap result (POST /v1/projections/rebuild with Accept: text/event-stream).

import { api, isAbort } from './api.js';
import { stream } from './sse.js';
import { h, fill, errorBox, announce, sleep } from './dom.js';

const REFRESH_MS = 2000;

const table = (projections) =>
  h(
    'table',
    { class: 'projections' },
    h('caption', { class: 'sr-only' }, 'Projections'),
    h('thead', {}, h('tr', {}, ['Name', 'Checkpoint', 'Log end', 'Lag', 'Rebuilding', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      projections.map((p) =>
        h(
          'tr',
          { 'data-name': p.name },
          h('th', { scope: 'row' }, p.name),
          h('td', { 'data-label': 'Checkpoint', class: 'mono', 'data-field': 'checkpoint' }, String(p.checkpoint)),
          h('td', { 'data-label': 'Log end', class: 'mono', 'data-field': 'lastPosition' }, String(p.lastPosition)),
          h('td', { 'data-label': 'Lag', class: 'mono', 'data-field': 'lag' }, String(p.lag)),
          h('td', { 'data-label': 'Rebuilding' }, p.rebuilding ? 'yes' : 'no'),
          h('td', { 'data-label': 'Error' }, p.error ?? '—'),
        ),
      ),
    ),
  );

const reportView = (r) =>
  h(
    'div',
    { class: 'ok', role: 'status', id: 'rebuild-report' },
    h('strong', {}, `Swapped in: ${r.name}. `),
    `Replayed ${r.replayed} events in ${r.durationMs} ms. Lag before the swap ${r.lagBefore}, after ${r.lagAfter}.`,
  );

export const projectionsPage = (root, { signal }) => {
  document.title = 'Projections · Pressluft';
  const status = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const button = h('button', { type: 'button', id: 'rebuild' }, 'Rebuild the nodes projection');
  const bar = h('progress', { id: 'rebuild-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Rebuild progress' });
  const progressText = h('p', { id: 'rebuild-text', 'aria-live': 'polite' });
  const result = h('div');

  const load = async () => {
    const { data } = await api('/v1/projections', { signal });
    fill(status, h('div', { class: 'table-wrap' }, table(data.projections)));
  };

  button.addEventListener('click', async () => {
    button.disabled = true;
    fill(result);
    bar.hidden = false;
    bar.removeAttribute('value');
    fill(progressText, 'Rebuilding beside the live read model…');
    try {
      await stream('/v1/projections/rebuild', {
        method: 'POST',
        body: { name: 'nodes' },
        signal,
        onEvent: (name, data) => {
          if (name === 'progress') {
            bar.max = Math.max(1, data.target);
            bar.value = data.position;
            fill(progressText, `Replayed up to position ${data.position} of ${data.target}.`);
          } else if (name === 'report') {
            bar.max = 1;
            bar.value = 1;
            fill(progressText, 'Done.');
            fill(result, reportView(data));
            announce('Rebuild finished and swapped in');
          } else if (name === 'error') {
            fill(result, errorBox(data.error));
          }
        },
      });
      await load();
    } catch (e) {
      if (!isAbort(e)) {
        fill(progressText);
        fill(result, errorBox(e));
      }
    } finally {
      button.disabled = false;
    }
  });

  fill(
    root,
    h('h1', { tabindex: -1 }, 'Projections'),
    h('p', { class: 'hint' }, 'The read models the API answers from. Lag is how many log positions a projection has not applied yet.'),
    status,
    h(
      'section',
      { 'aria-labelledby': 'rebuild-title', class: 'card' },
      h('h2', { id: 'rebuild-title' }, 'Rebuild'),
      h('p', { class: 'hint' }, 'Replays the whole log into a fresh copy beside the live one, then swaps it in. Queries keep working meanwhile.'),
      button,
      bar,
      progressText,
      result,
    ),
  );

  void (async () => {
    while (!signal.aborted) {
      try {
        await load();
      } catch (e) {
        if (isAbort(e) || signal.aborted) return;
        fill(status, errorBox(e, 'Retrying…'));
        if (e.status === 401) return;
      }
      await sleep(REFRESH_MS, signal);
    }
  })();
};
