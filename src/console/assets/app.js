// The console's shell: the token prompt, the hash router and the page lifecycle. Routes live in
// the fragment (#/nodes/n_…), which never leaves the browser; the token is never in it.

import { token, request, UNAUTHORIZED } from './api.js';
import { h, fill, errorBox, announce } from './dom.js';
import { fleetPage } from './fleet.js';
import { nodePage } from './node.js';
import { jobPage } from './job.js';
import { projectionsPage } from './projections.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = null;

const ROUTES = [
  [/^\/?(?:fleet)?$/, fleetPage],
  [/^\/nodes\/([^/]+)$/, nodePage],
  [/^\/jobs\/([^/]+)$/, jobPage],
  [/^\/projections$/, projectionsPage],
];

const notFoundPage = (root, { path }) => {
  document.title = 'Not found · Pressluft';
  fill(root, h('h1', { tabindex: -1 }, 'Page not found'), errorBox({ code: 'not_found', message: `the console has no page ${path}` }), h('p', {}, h('a', { href: '#/fleet' }, 'Back to the fleet')));
};

const stopPage = () => {
  current?.abort();
  current = null;
};

/** Renders the page the fragment names; the previous page's requests and timers are stopped. */
const route = () => {
  stopPage();
  if (!token.get()) return signIn();
  nav.hidden = false;
  const [path = '', qs = ''] = location.hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(qs);
  current = new AbortController();
  fill(main);
  for (const [re, page] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    page(main, { params: m.slice(1).map(decodeURIComponent), query, signal: current.signal });
    main.querySelector('h1')?.focus();
    return;
  }
  notFoundPage(main, { path });
  main.querySelector('h1')?.focus();
};

/** The token prompt. The token is checked against the API before it is kept. */
const signIn = (refused) => {
  stopPage();
  nav.hidden = true;
  document.title = 'Sign in · Pressluft';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const status = h('div', { id: 'sign-in-status' }, refused ? errorBox(refused, 'The token was refused. Type it again.') : null);
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', tabindex: -1 }, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'hint' }, 'The token of this control plane (PRESSLUFT_API_TOKEN, or the file <data dir>/api-token). It stays in this tab only and is sent as a bearer header.'),
    button,
    status,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const candidate = input.value.trim();
    button.disabled = true;
    fill(status, h('p', { class: 'hint' }, 'Checking…'));
    try {
      await request('/v1/projections', { tokenOverride: candidate });
      token.set(candidate);
      announce('Signed in');
      route();
    } catch (e) {
      fill(status, errorBox(e));
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, form);
  input.focus();
};

document.getElementById('sign-out').addEventListener('click', () => {
  token.clear();
  announce('Signed out');
  signIn();
});
window.addEventListener(UNAUTHORIZED, (ev) => signIn(ev.detail));
window.addEventListener('hashchange', route);
route();
