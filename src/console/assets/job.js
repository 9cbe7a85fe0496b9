// Job: live progress over GET /v1/jobs/:id/stream (read with fetch, see sse.js): the step, the
// attempt, Ansible task N of M; on failure the code, message and output tail; a pending retry's
// start time. Each job event refreshes the job from the read model at that event's position.

import { api, withQuery, isAbort } from './api.js';
import { stream } from './sse.js';
import { h, fill, time, chip, nodeLink, errorBox, relative, announce, sleep, oneLine } from './dom.js';
import { describeEvent } from './describe.js';

const STEPS = [
  ['queued', 'Queued'],
  ['ssh_key', 'SSH key'],
  ['server_create', 'Create server'],
  ['server_actions', 'Provider actions'],
  ['server_ready', 'Server ready'],
  ['ansible', 'Ansible'],
  ['done', 'Done'],
];
const ACTIVE = new Set(['queued', 'running']);

const stepList = (job, lastActive) => {
  const at = job.step === 'done' && job.status !== 'succeeded' ? lastActive : job.step;
  const index = STEPS.findIndex(([k]) => k === at);
  return h(
    'ol',
    { class: 'steps', 'aria-label': 'Steps' },
    STEPS.map(([key, label], i) => {
      const failed = i === index && (job.status === 'failed' || job.status === 'cancelled');
      const state = failed ? 'failed' : i < index || job.status === 'succeeded' ? 'done' : i === index ? 'current' : 'todo';
      return h('li', { class: state, 'data-step': key, 'aria-current': state === 'current' ? 'step' : false }, h('span', { class: 'sr-only' }, `${state}: `), label);
    }),
  );
};

const retryNotice = (job) =>
  h(
    'div',
    { class: 'warn', role: 'status', id: 'retry' },
    h('strong', {}, 'Retry pending. '),
    `Attempt ${job.attempt} failed [${job.errorCode}]: ${oneLine(job.errorMessage)}. Attempt ${job.attempt + 1} of ${job.maxAttempts} starts at `,
    time(job.runAfter),
    ' (', h('span', { 'data-run-after': job.runAfter }, relative(job.runAfter)), ').',
  );

const failure = (job, tail) =>
  h(
    'div',
    { class: 'error', role: 'alert', id: 'failure' },
    h('strong', {}, `error [${job.errorCode}]`),
    `: ${oneLine(job.errorMessage)}`,
    tail ? h('details', { open: true }, h('summary', {}, 'Ansible output (tail)'), h('pre', { tabindex: 0, class: 'tail' }, tail)) : null,
  );

export const jobPage = (root, { params: [jobId], query, signal }) => {
  document.title = `Job ${jobId} · Pressluft`;
  const jobPath = `/v1/jobs/${encodeURIComponent(jobId)}`;
  let job = null;
  let lastActive = 'queued';
  let outputTail = null;
  let lastPosition = 0;
  let wanted = Number(query.get('minPosition')) || undefined;

  const crumbs = h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', h('span', { class: 'mono' }, jobId));
  const summary = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const steps = h('div');
  const taskText = h('p', { id: 'task' }, 'No Ansible task has reported yet.');
  const bar = h('progress', { id: 'task-progress', max: 1, value: 0, 'aria-labelledby': 'ansible-title' });
  const notices = h('div');
  const live = h('p', { class: 'live muted small', id: 'stream-status', role: 'status' }, 'Connecting…');
  const events = h('ol', { class: 'events', id: 'job-events' });

  const render = (stale) => {
    if (!job) return;
    fill(crumbs, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', nodeLink(job.nodeId), ' / ', h('span', { class: 'mono' }, jobId));
    fill(
      summary,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { 'data-field': 'status' }, chip(job.status)),
        h('dt', {}, 'Step'), h('dd', { 'data-field': 'step', class: 'mono' }, job.step),
        h('dt', {}, 'Attempt'), h('dd', { 'data-field': 'attempt' }, `${job.attempt} of ${job.maxAttempts}`),
        h('dt', {}, 'Requested'), h('dd', {}, time(job.requestedAt)),
        h('dt', {}, 'Started'), h('dd', {}, time(job.startedAt)),
        h('dt', {}, 'Finished'), h('dd', {}, time(job.finishedAt)),
      ),
      stale ? h('p', { class: 'warn', role: 'status' }, `The read model is behind (at position ${stale}); this may be older than the events below.`) : null,
    );
    fill(steps, stepList(job, lastActive));
    const retrying = ACTIVE.has(job.status) && job.runAfter;
    fill(notices, retrying ? retryNotice(job) : null, job.status === 'failed' || job.status === 'cancelled' ? failure(job, outputTail) : null);
  };

  /** Reads the job at a position; calls that overlap are folded into one with the highest position. */
  let reading = null;
  const refresh = async (minPosition) => {
    wanted = Math.max(wanted ?? 0, minPosition ?? 0) || undefined;
    if (reading) return reading;
    reading = (async () => {
      try {
        for (let seen = -1; seen !== wanted; ) {
          seen = wanted;
          const res = await api(withQuery(jobPath, { minPosition: seen }), { signal });
          job = res.data;
          if (job.step !== 'done') lastActive = job.step;
          render(res.stale ? res.checkpoint : null);
        }
      } finally {
        reading = null;
      }
    })();
    return reading;
  };

  const onEvent = (name, data) => {
    if (name === 'job-event') {
      lastPosition = data.position;
      if ('outputTail' in data.data) outputTail = data.data.outputTail;
      events.append(h('li', { 'data-type': data.type }, time(data.occurredAt), ' ', h('strong', {}, data.type), ' ', describeEvent(data)));
      void refresh(data.position).catch(() => undefined);
    } else if (name === 'progress') {
      fill(taskText, `Ansible task ${data.index} of ${data.total}: `, h('strong', {}, data.task), h('span', { class: 'muted' }, ` (${data.status} on ${data.host}, attempt ${data.attempt}${data.handler ? ', handler' : ''})`));
      bar.max = data.total;
      bar.value = data.index;
      bar.textContent = `${data.index} of ${data.total}`;
    } else if (name === 'end') {
      fill(live, `Stream ended: the job ${data.status}.`);
      announce(`Job ${data.status}`);
      void refresh(data.position).catch(() => undefined);
    }
  };

  /** Follows the stream to its end; a dropped connection resumes after the last event seen. */
  const watch = async () => {
    for (;;) {
      let ended = false;
      try {
        fill(live, 'Live: following the job’s events.');
        await stream(`${jobPath}/stream`, {
          lastEventId: lastPosition || undefined,
          signal,
          onEvent: (name, data, id) => {
            if (name === 'end') ended = true;
            onEvent(name, data, id);
          },
        });
        if (ended) return;
        fill(live, 'The stream closed early. Reconnecting…');
      } catch (e) {
        if (isAbort(e) || signal.aborted) return;
        if (e.status === 401 || e.status === 404) return;
        fill(live, errorBox(e, 'Reconnecting…'));
      }
      await sleep(1000, signal);
      if (signal.aborted) return;
    }
  };

  fill(
    root,
    crumbs,
    h('h1', { tabindex: -1 }, 'Job ', h('span', { class: 'mono' }, jobId)),
    summary,
    notices,
    h('section', { 'aria-labelledby': 'steps-title', class: 'card' }, h('h2', { id: 'steps-title' }, 'Steps'), steps),
    h('section', { 'aria-labelledby': 'ansible-title', class: 'card' }, h('h2', { id: 'ansible-title' }, 'Ansible progress'), taskText, bar),
    live,
    h('section', { 'aria-labelledby': 'events-title' }, h('h2', { id: 'events-title' }, 'Events of this job'), events),
  );

  refresh(wanted).then(
    () => watch(),
    (e) => {
      if (isAbort(e)) return;
      fill(summary, errorBox(e, e.stale ? 'The read model has not projected this job yet; reload in a moment.' : null));
      fill(live, '');
    },
  );
  // The "starts in 12 s" of a pending retry counts down without a new event.
  const tick = setInterval(() => {
    for (const el of notices.querySelectorAll('[data-run-after]')) el.textContent = relative(el.dataset.runAfter);
  }, 1000);
  signal.addEventListener('abort', () => clearInterval(tick), { once: true });
};
