// The auditor's view of one node: its events from the log (time, actor, correlation, one line,
// the raw event on demand), and the state folded from the log at any earlier position.

import { api, withQuery, isAbort } from './api.js';
import { h, fill, time, chip, jobLink, errorBox } from './dom.js';
import { describeEvent } from './describe.js';

const rawRow = (e, id) =>
  h('tr', { id, class: 'raw', hidden: true }, h('td', { colspan: 6 }, h('pre', { tabindex: 0, 'aria-label': `Raw event at position ${e.position}` }, JSON.stringify(e, null, 2))));

let rows = 0;

const eventRows = (e, onPick) => {
  // One decision can append several events at one position, so rows get their own ids.
  const rawId = `raw-${++rows}`;
  const toggle = h('button', { type: 'button', class: 'small secondary', 'aria-expanded': 'false', 'aria-controls': rawId }, 'Raw');
  const raw = rawRow(e, rawId);
  toggle.addEventListener('click', () => {
    raw.hidden = !raw.hidden;
    toggle.setAttribute('aria-expanded', String(!raw.hidden));
  });
  const main = h(
    'tr',
    { 'data-position': e.position, 'data-type': e.type },
    h('td', { 'data-label': 'Position', class: 'mono' }, h('button', { type: 'button', class: 'link', title: 'Show the state at this position', onclick: () => onPick(e.position) }, `#${e.position}`)),
    h('td', { 'data-label': 'Time' }, time(e.occurredAt)),
    h('td', { 'data-label': 'Event' }, h('strong', {}, e.type), h('div', { class: 'desc' }, describeEvent(e))),
    h('td', { 'data-label': 'Actor', class: 'mono small' }, e.actor),
    h('td', { 'data-label': 'Correlation', class: 'mono small' }, jobLink(e.correlationId)),
    h('td', {}, toggle),
  );
  return [main, raw];
};

const jobsList = (jobs) =>
  h(
    'ul',
    { class: 'plain' },
    Object.values(jobs).map((j) =>
      h('li', {}, jobLink(j.jobId), ' ', chip(j.status), ` attempt ${j.attempt} of ${j.policy.maxAttempts}`, j.errorCode ? h('span', { class: 'mono' }, ` [${j.errorCode}]`) : null),
    ),
  );

const stateView = (s, at) =>
  h(
    'div',
    { id: 'state-view' },
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'At position'), h('dd', { class: 'mono', 'data-field': 'at' }, String(at)),
      h('dt', {}, 'Status'), h('dd', { 'data-field': 'status' }, chip(s.status)),
      h('dt', {}, 'Server'), h('dd', { class: 'mono' }, s.providerServerId ?? '—'),
      h('dt', {}, 'Address'), h('dd', { class: 'mono' }, s.ipv4 ?? '—'),
      h('dt', {}, 'Current job'), h('dd', { class: 'mono', 'data-field': 'currentJobId' }, jobLink(s.currentJobId)),
      h('dt', {}, 'Last job'), h('dd', { class: 'mono' }, jobLink(s.lastJobId)),
      h('dt', {}, 'Jobs'), h('dd', {}, jobsList(s.jobs)),
    ),
    h('details', {}, h('summary', {}, 'Raw folded state'), h('pre', { tabindex: 0 }, JSON.stringify(s, null, 2))),
  );

/** The timeline and the state picker of one node; add(events) appends newer events as they come. */
export const timeline = (nodeId, signal) => {
  const events = [];
  /** Distinct positions, oldest first: the picker moves one decision at a time. */
  const positions = [];
  const body = h('tbody');
  const slider = h('input', { id: 'position-picker', type: 'range', min: 0, max: 0, step: 1, value: 0, 'aria-describedby': 'position-label' });
  const label = h('output', { id: 'position-label', for: 'position-picker' }, '');
  const latest = h('button', { type: 'button', class: 'secondary small' }, 'Latest');
  const state = h('div', { 'aria-live': 'polite' });
  let followLatest = true;
  let loading = null;

  const showState = async (index) => {
    const position = positions[index];
    if (position === undefined) return;
    slider.value = String(index);
    const types = events.filter((e) => e.position === position).map((e) => e.type);
    for (const tr of body.querySelectorAll('tr[data-position]')) {
      const here = Number(tr.dataset.position) === position;
      tr.classList.toggle('picked', here);
      tr.toggleAttribute('aria-current', here);
    }
    fill(label, `Position ${position} (${index + 1} of ${positions.length}): after ${types.join(', ')}`);
    loading?.abort();
    loading = new AbortController();
    try {
      const { data } = await api(withQuery(`/v1/nodes/${encodeURIComponent(nodeId)}/state`, { at: position }), { signal: AbortSignal.any([signal, loading.signal]) });
      fill(state, stateView(data.state, data.at));
    } catch (err) {
      if (!isAbort(err)) fill(state, errorBox(err));
    }
  };
  const pick = (position) => {
    const i = positions.indexOf(position);
    followLatest = i === positions.length - 1;
    void showState(i);
    slider.focus();
  };
  slider.addEventListener('input', () => {
    followLatest = Number(slider.value) === positions.length - 1;
    void showState(Number(slider.value));
  });
  latest.addEventListener('click', () => pick(positions.at(-1)));

  const add = (newer) => {
    if (!newer.length) return;
    events.push(...newer);
    for (const e of newer) if (positions.at(-1) !== e.position) positions.push(e.position);
    body.append(...newer.flatMap((e) => eventRows(e, pick)));
    slider.max = String(positions.length - 1);
    if (followLatest) void showState(positions.length - 1);
  };

  const element = h(
    'div',
    {},
    h(
      'section',
      { 'aria-labelledby': 'state-title', class: 'card' },
      h('h2', { id: 'state-title' }, 'State at a position'),
      h('p', { class: 'hint' }, 'Folded from the log with the deciders’ own evolve, up to the chosen position. Arrow keys move one decision; Home and End go to the first and the latest.'),
      h('div', { class: 'picker' }, h('label', { for: 'position-picker' }, 'Position'), slider, latest),
      h('p', {}, label),
      state,
    ),
    h(
      'section',
      { 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'timeline' },
          h('caption', { class: 'sr-only' }, 'Events of this node, oldest first'),
          h('thead', {}, h('tr', {}, ['Position', 'Time', 'Event', 'Actor', 'Correlation', h('span', { class: 'sr-only' }, 'Raw')].map((c) => h('th', { scope: 'col' }, c)))),
          body,
        ),
      ),
    ),
  );
  return { element, add, lastPosition: () => positions.at(-1) ?? 0 };
};
