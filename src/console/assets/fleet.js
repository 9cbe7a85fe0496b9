// Fleet: every node with its status, server, address and jobs; filter, search, counts per
// status, and live updates from the read model (follow.js).

import { api, withQuery } from './api.js';
import { follow } from './follow.js';
import { h, fill, chip, nodeLink, jobLink, errorBox, announce } from './dom.js';

const STATUSES = ['pending', 'acquiring', 'provisioning', 'ready', 'degraded', 'failed'];
const PAGE = 500;

/** All pages of GET /v1/nodes after the first one. */
const rest = async (first, signal) => {
  const nodes = [...first.nodes];
  for (let after = first.next; after; ) {
    const { data } = await api(withQuery('/v1/nodes', { limit: PAGE, after }), { signal });
    nodes.push(...data.nodes);
    after = data.next;
  }
  return nodes;
};

const serverCell = (n) => [n.providerServerId ? h('span', { class: 'mono' }, `#${n.providerServerId} `) : null, h('span', { class: 'muted' }, `${n.serverType} · ${n.location}`)];
const addressCell = (n) => (n.ipv4 ? h('span', { class: 'mono' }, `${n.ipv4}:${n.sshPort}`) : '—');

const row = (n) =>
  h(
    'tr',
    { 'data-node-id': n.id, 'data-status': n.status },
    h('th', { scope: 'row' }, nodeLink(n.id, n.name), h('div', { class: 'muted mono small' }, n.id)),
    h('td', { 'data-label': 'Status' }, chip(n.status)),
    h('td', { 'data-label': 'Server' }, serverCell(n)),
    h('td', { 'data-label': 'Address' }, addressCell(n)),
    h('td', { 'data-label': 'Current job', class: 'mono' }, jobLink(n.currentJobId)),
    h('td', { 'data-label': 'Last job', class: 'mono' }, jobLink(n.lastJobId)),
  );

export const fleetPage = (root, { signal }) => {
  document.title = 'Fleet · Pressluft';
  let nodes = null;
  const filter = { status: '', search: '' };

  const statusSelect = h('select', { id: 'status-filter' }, h('option', { value: '' }, 'All statuses'), STATUSES.map((s) => h('option', { value: s }, s)));
  const search = h('input', { id: 'name-search', type: 'search', autocomplete: 'off', placeholder: 'web-1' });
  const counts = h('ul', { class: 'counts', 'aria-label': 'Nodes per status' });
  const body = h('tbody');
  const summary = h('p', { class: 'muted', id: 'fleet-summary' }, 'Loading…');
  const problem = h('div');
  const updated = h('p', { class: 'live muted small' });

  const render = () => {
    if (!nodes) return;
    const per = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const n of nodes) per[n.status] = (per[n.status] ?? 0) + 1;
    fill(
      counts,
      [['', nodes.length, 'all'], ...Object.entries(per).map(([s, c]) => [s, c, s])].map(([value, count, label]) =>
        h(
          'li',
          {},
          h('button', { type: 'button', class: `count s-${label}`, 'data-status': label, 'aria-pressed': String(filter.status === value), onclick: () => setStatus(value) }, h('span', { class: 'n' }, String(count)), ` ${label}`),
        ),
      ),
    );
    const q = filter.search.trim().toLowerCase();
    const shown = nodes.filter((n) => (!filter.status || n.status === filter.status) && (!q || n.name.toLowerCase().includes(q)));
    fill(body, shown.map(row));
    fill(summary, `${shown.length} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} shown`);
  };
  const setStatus = (s) => {
    filter.status = s;
    statusSelect.value = s;
    render();
  };
  statusSelect.addEventListener('change', () => setStatus(statusSelect.value));
  search.addEventListener('input', () => {
    filter.search = search.value;
    render();
  });

  fill(
    root,
    h('h1', { tabindex: -1 }, 'Fleet'),
    counts,
    h(
      'div',
      { class: 'filters', role: 'search' },
      h('div', {}, h('label', { for: 'status-filter' }, 'Status'), statusSelect),
      h('div', {}, h('label', { for: 'name-search' }, 'Search by name'), search),
    ),
    problem,
    summary,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'fleet' },
        h('caption', { class: 'sr-only' }, 'Nodes'),
        h('thead', {}, h('tr', {}, ['Name', 'Status', 'Server', 'Address', 'Current job', 'Last job'].map((c) => h('th', { scope: 'col' }, c)))),
        body,
      ),
    ),
    updated,
  );

  void follow('/v1/nodes', {
    signal,
    query: { limit: PAGE },
    onData: async (data, res) => {
      // By name, as people look for them; the API pages by id.
      const all = (await rest(data, signal)).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
      const first = nodes === null;
      fill(problem);
      fill(updated, `Live: read model at position ${res.checkpoint ?? '?'}, updated ${new Date().toLocaleTimeString()}`);
      // Re-render only on a real change, so keyboard focus in the table is not lost for nothing.
      if (!first && JSON.stringify(all) === JSON.stringify(nodes)) return;
      nodes = all;
      render();
      if (!first) announce('The fleet list was updated');
    },
    onError: (e) => fill(problem, errorBox(e, e.status === 401 ? null : 'Retrying…')),
  });
};
