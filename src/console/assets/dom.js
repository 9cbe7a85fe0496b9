// Small DOM helpers. Text always goes in through textContent, never innerHTML: event data and
// Ansible output are shown as they are, and can never become markup or script.

/** h('a', { href: '#/fleet', class: 'x' }, 'text', child) builds an element. */
export const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
};

const append = (el, children) => {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
};

/** Replaces an element's children. */
export const fill = (el, ...children) => {
  el.replaceChildren();
  append(el, children);
  return el;
};

/** A local date and time, to the second, with the ISO instant in the title for auditors. */
export const time = (iso) => {
  if (!iso) return '—';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }));
};

/** "in 12 s" / "3 min ago" relative to now. */
export const relative = (iso, now = Date.now()) => {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const abs = Math.abs(s);
  const span = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return s >= 0 ? `in ${span}` : `${span} ago`;
};

/** A status as text in a coloured chip: the colour helps, the word carries the meaning. */
export const chip = (status) => h('span', { class: `chip s-${String(status).replace(/[^a-z_]/g, '')}` }, status ?? '—');

export const nodeLink = (id, label = id) => (id ? h('a', { href: `#/nodes/${encodeURIComponent(id)}` }, label) : '—');
export const jobLink = (id, label = id) => (id ? h('a', { href: `#/jobs/${encodeURIComponent(id)}` }, label) : '—');

/** An API error as the API said it: the stable code, verbatim, and the message. */
export const errorBox = (err, extra) =>
  h('div', { class: 'error', role: 'alert' }, h('strong', {}, `error [${err.code ?? 'unknown'}]`), ': ', err.message ?? String(err), extra ? h('div', {}, extra) : null);

/** A message folded onto one line and cut: the full text stays in the raw event and the output tail. */
export const oneLine = (text, max = 300) => {
  const line = String(text ?? '').replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
};

/** Tells screen readers what changed without moving focus. */
export const announce = (text) => {
  const el = document.getElementById('announce');
  if (el) el.textContent = text;
};

/** Resolves after ms, or at once when the signal aborts. */
export const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
