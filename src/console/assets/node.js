// Node: what the read model says now, the actions (re-provision, cancel), and the timeline with
// the state at any earlier position (timeline.js).

import { api, withQuery, isAbort } from './api.js';
import { follow } from './follow.js';
import { h, fill, time, chip, jobLink, errorBox, announce } from './dom.js';
import { confirmAction } from './confirm.js';
import { timeline } from './timeline.js';

const facts = (n) =>
  h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', { 'data-field': 'status' }, chip(n.status)),
    h('dt', {}, 'Server'), h('dd', {}, h('span', { class: 'mono' }, n.providerServerId ? `#${n.providerServerId}` : '—'), ` ${n.serverType} · ${n.location} · ${n.image}`),
    h('dt', {}, 'Address'), h('dd', { class: 'mono' }, n.ipv4 ? `${n.sshUser}@${n.ipv4}:${n.sshPort}` : '—'),
    h('dt', {}, 'Current job'), h('dd', { class: 'mono', 'data-field': 'currentJobId' }, jobLink(n.currentJobId)),
    h('dt', {}, 'Last job'), h('dd', { class: 'mono', 'data-field': 'lastJobId' }, jobLink(n.lastJobId)),
    h('dt', {}, 'Updated'), h('dd', {}, time(n.updatedAt), h('span', { class: 'muted small' }, ` (position ${n.position})`)),
  );

/** "what the API did", after a command: the accepted answer, or its error code verbatim. */
const commandResult = (title, accepted) =>
  h('div', { class: 'ok', role: 'status' }, h('strong', {}, title), ` accepted at position ${accepted.position}: job `, jobLink(accepted.jobId), ' · ', h('a', { href: `#/jobs/${encodeURIComponent(accepted.jobId)}?minPosition=${accepted.position}` }, 'watch it live'));

const staleNotice = (position, checkpoint) =>
  h('div', { class: 'warn', role: 'status' }, `The read model had not reached position ${position} after the API's wait (it is at ${checkpoint}). What you see may be older than your change; it updates by itself.`);

export const nodePage = (root, { params: [nodeId], signal }) => {
  document.title = `Node ${nodeId} · Pressluft`;
  const nodePath = `/v1/nodes/${encodeURIComponent(nodeId)}`;
  let node = null;
  const title = h('h1', { tabindex: -1 }, nodeId);
  const factsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const result = h('div', { id: 'action-result' });
  const reprovision = h('button', { type: 'button', id: 'reprovision' }, 'Re-provision');
  const cancel = h('button', { type: 'button', id: 'cancel-job', class: 'danger', disabled: true }, 'Cancel current job');
  const tl = timeline(nodeId, signal);

  const show = (n, stale) => {
    node = n;
    fill(title, n.name);
    document.title = `${n.name} · Pressluft`;
    fill(factsBox, facts(n), stale);
    cancel.disabled = !n.currentJobId;
  };

  /** Runs a confirmed command, shows its answer, then reads the node back at the command's position. */
  const command = async (button, title, run) => {
    button.disabled = true;
    try {
      const accepted = await run();
      fill(result, commandResult(title, accepted));
      announce(`${title} accepted`);
      const res = await api(withQuery(nodePath, { minPosition: accepted.position }), { signal });
      show(res.data, res.stale ? staleNotice(accepted.position, res.checkpoint) : null);
    } catch (e) {
      if (!isAbort(e)) fill(result, errorBox(e));
    } finally {
      button.disabled = button === cancel ? !node?.currentJobId : false;
    }
  };

  reprovision.addEventListener('click', async () => {
    if (!(await confirmAction('Re-provision this node?', `A new job converges ${node?.name ?? nodeId} again with Ansible. The server is adopted, not bought again.`, 'Re-provision'))) return;
    await command(reprovision, 'Re-provision', async () => (await api(`${nodePath}/provision`, { method: 'POST', signal })).data);
  });
  cancel.addEventListener('click', async () => {
    const jobId = node?.currentJobId;
    if (!jobId || !(await confirmAction('Cancel the current job?', `Job ${jobId} stops at its next step; a running Ansible play is killed.`, 'Cancel job'))) return;
    await command(cancel, 'Cancel', async () => (await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: 'POST', body: { reason: 'cancelled from the console' }, signal })).data);
  });

  fill(
    root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', h('span', { class: 'mono' }, nodeId)),
    title,
    factsBox,
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Node actions' }, reprovision, cancel),
    result,
    tl.element,
  );

  const loadEvents = async () => {
    const from = tl.lastPosition() + 1;
    const { data } = await api(withQuery(`${nodePath}/events`, { from }), { signal });
    tl.add(data.events);
  };

  // The log decides whether the node exists (a 404 from the read model may only mean "not projected yet").
  loadEvents().then(
    () =>
      follow(nodePath, {
        signal,
        onData: async (n) => {
          show(n, null);
          if (n.position > tl.lastPosition()) await loadEvents();
        },
        onError: (e) => fill(factsBox, errorBox(e, e.code === 'not_found' ? 'The read model has not projected this node yet. Retrying…' : 'Retrying…')),
      }),
    (e) => {
      if (isAbort(e)) return;
      fill(factsBox, errorBox(e));
      reprovision.disabled = true;
    },
  );
};
