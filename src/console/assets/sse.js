// Server-Sent Events over fetch(). EventSource cannot send an Authorization header, and the token
// must never ride in a URL, so the stream is read from fetch's ReadableStream and parsed here,
// following the WHATWG event-stream format (event, data, id; comments and retry ignored).

import { request } from './api.js';

/** Feeds text chunks; calls onEvent({ event, data, id }) for each complete event. */
export const sseParser = (onEvent) => {
  let buffer = '';
  let event = '';
  let data = [];
  let id = null;
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id });
      event = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  };
  return (chunk) => {
    buffer += chunk;
    // A chunk may end mid-line, or between the \r and \n of one line end: keep the tail for the next one.
    const cut = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
    buffer = (lines.pop() ?? '') + buffer.slice(cut);
    for (const l of lines) line(l);
  };
};

/**
 * Opens an event stream and calls onEvent(name, parsedJson, id) until the server ends it.
 * Throws ApiError when the answer is not 2xx (before any event), like any other call.
 */
export const stream = async (path, { method = 'GET', body, lastEventId, signal, onEvent }) => {
  const headers = lastEventId ? { 'last-event-id': String(lastEventId) } : {};
  const res = await request(path, { method, body, accept: 'text/event-stream', headers, signal });
  const feed = sseParser(({ event, data, id }) => {
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    onEvent(event, parsed, id);
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      // A stream that ends right after a \r: that \r was a whole line end.
      feed('\n');
      return;
    }
    feed(value);
  }
};
