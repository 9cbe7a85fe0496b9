import { describe, expect, it } from 'vitest';
import { AUTH, nodeBody, useApi } from './api-harness.ts';

const h = useApi();

interface Case {
  what: string;
  method?: 'GET' | 'POST';
  url?: string;
  /** A JSON value, or a raw string sent as is. */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const json = { 'content-type': 'application/json' };
const long = (n: number) => 'a'.repeat(n);

/** Malformed requests: each must get a 4xx with a stable code and append nothing. */
const cases: Case[] = [
  // wrong types
  { what: 'name is a number', body: nodeBody({ name: 42 }), status: 400, code: 'bad_request' },
  { what: 'name is null', body: nodeBody({ name: null }), status: 400, code: 'bad_request' },
  { what: 'name is an array', body: nodeBody({ name: ['web'] }), status: 400, code: 'bad_request' },
  { what: 'serverType is an object', body: nodeBody({ serverType: { a: 1 } }), status: 400, code: 'bad_request' },
  { what: 'location is boolean', body: nodeBody({ location: true }), status: 400, code: 'bad_request' },
  { what: 'sshPort is a string', body: nodeBody({ sshPort: '22' }), status: 400, code: 'bad_request' },
  { what: 'sshPort is a float', body: nodeBody({ sshPort: 22.5 }), status: 400, code: 'bad_request' },
  { what: 'sshPort is 0', body: nodeBody({ sshPort: 0 }), status: 400, code: 'bad_request' },
  { what: 'sshPort is 65536', body: nodeBody({ sshPort: 65536 }), status: 400, code: 'bad_request' },
  { what: 'sshPort is negative', body: nodeBody({ sshPort: -1 }), status: 400, code: 'bad_request' },
  { what: 'sshUser is a number', body: nodeBody({ sshUser: 0 }), status: 400, code: 'bad_request' },
  { what: 'image is null', body: nodeBody({ image: null }), status: 400, code: 'bad_request' },
  { what: 'body is an array', body: [nodeBody()], status: 400, code: 'bad_request' },
  { what: 'body is a string', raw: '"web-1"', headers: json, status: 400, code: 'bad_request' },
  { what: 'body is null', raw: 'null', headers: json, status: 400, code: 'bad_request' },
  { what: 'body is a number', raw: '7', headers: json, status: 400, code: 'bad_request' },
  // missing and unknown fields
  { what: 'empty object', body: {}, status: 400, code: 'bad_request' },
  { what: 'no body', status: 400, code: 'bad_request' },
  { what: 'name missing', body: { serverType: 'cx22', location: 'fsn1' }, status: 400, code: 'bad_request' },
  { what: 'serverType missing', body: { name: 'web-1', location: 'fsn1' }, status: 400, code: 'bad_request' },
  { what: 'location missing', body: { name: 'web-1', serverType: 'cx22' }, status: 400, code: 'bad_request' },
  { what: 'unknown field', body: nodeBody({ color: 'blue' }), status: 400, code: 'bad_request' },
  { what: 'provider is not settable', body: nodeBody({ provider: 'aws' }), status: 400, code: 'bad_request' },
  { what: 'nodeId is not settable', body: nodeBody({ nodeId: 'n_mine' }), status: 400, code: 'bad_request' },
  { what: 'prototype pollution', raw: '{"name":"web-1","serverType":"cx22","location":"fsn1","__proto__":{"admin":true}}', headers: json, status: 400, code: 'bad_request' },
  { what: 'constructor pollution', raw: '{"name":"web-1","serverType":"cx22","location":"fsn1","constructor":{"prototype":{"x":1}}}', headers: json, status: 400, code: 'bad_request' },
  // oversized strings
  { what: 'name of 64 chars', body: nodeBody({ name: long(64) }), status: 400, code: 'bad_request' },
  { what: 'label of 64 chars', body: nodeBody({ name: `${long(64)}.x` }), status: 400, code: 'bad_request' },
  { what: 'serverType of 65 chars', body: nodeBody({ serverType: long(65) }), status: 400, code: 'bad_request' },
  { what: 'location of 65 chars', body: nodeBody({ location: long(65) }), status: 400, code: 'bad_request' },
  { what: 'image of 65 chars', body: nodeBody({ image: long(65) }), status: 400, code: 'bad_request' },
  { what: 'sshUser of 33 chars', body: nodeBody({ sshUser: long(33) }), status: 400, code: 'bad_request' },
  { what: 'body over the limit', body: nodeBody({ name: long(70_000) }), status: 413, code: 'payload_too_large' },
  // invalid names (RFC 1123) and charsets
  { what: 'empty name', body: nodeBody({ name: '' }), status: 400, code: 'bad_request' },
  { what: 'uppercase name', body: nodeBody({ name: 'Web-1' }), status: 400, code: 'bad_request' },
  { what: 'underscore in name', body: nodeBody({ name: 'web_1' }), status: 400, code: 'bad_request' },
  { what: 'leading hyphen', body: nodeBody({ name: '-web' }), status: 400, code: 'bad_request' },
  { what: 'trailing hyphen', body: nodeBody({ name: 'web-' }), status: 400, code: 'bad_request' },
  { what: 'double dot', body: nodeBody({ name: 'web..example' }), status: 400, code: 'bad_request' },
  { what: 'leading dot', body: nodeBody({ name: '.web' }), status: 400, code: 'bad_request' },
  { what: 'space in name', body: nodeBody({ name: 'web 1' }), status: 400, code: 'bad_request' },
  { what: 'unicode name', body: nodeBody({ name: 'wéb' }), status: 400, code: 'bad_request' },
  { what: 'shell chars in name', body: nodeBody({ name: 'web;rm -rf' }), status: 400, code: 'bad_request' },
  { what: 'NATS wildcard in serverType', body: nodeBody({ serverType: 'cx*' }), status: 400, code: 'bad_request' },
  { what: 'slash in location', body: nodeBody({ location: 'fsn1/x' }), status: 400, code: 'bad_request' },
  { what: 'newline in image', body: nodeBody({ image: 'ubuntu\n24' }), status: 400, code: 'bad_request' },
  { what: 'sshUser starting with a digit', body: nodeBody({ sshUser: '1root' }), status: 400, code: 'bad_request' },
  { what: 'sshUser with a space', body: nodeBody({ sshUser: 'ro ot' }), status: 400, code: 'bad_request' },
  { what: 'empty sshUser', body: nodeBody({ sshUser: '' }), status: 400, code: 'bad_request' },
  { what: 'non-root sshUser (ADR 0071)', body: nodeBody({ sshUser: 'deploy' }), status: 422, code: 'ssh_user_unsupported' },
  // bad ids, params and queries
  { what: 'node id with a dot', method: 'GET', url: '/v1/nodes/n.1', status: 400, code: 'bad_request' },
  { what: 'node id with a NATS wildcard', method: 'GET', url: '/v1/nodes/n%3E', status: 400, code: 'bad_request' },
  { what: 'node id with a star', method: 'POST', url: '/v1/nodes/n*/provision', status: 400, code: 'bad_request' },
  { what: 'job id with a space', method: 'GET', url: '/v1/jobs/j%201', status: 400, code: 'bad_request' },
  { what: 'job id with unicode', method: 'POST', url: '/v1/jobs/j%C3%A9/cancel', status: 400, code: 'bad_request' },
  { what: 'node id of 65 chars', method: 'GET', url: `/v1/nodes/${long(65)}/events`, status: 400, code: 'bad_request' },
  { what: 'minPosition not a number', method: 'GET', url: '/v1/nodes?minPosition=soon', status: 400, code: 'bad_request' },
  { what: 'minPosition negative', method: 'GET', url: '/v1/jobs/j_1?minPosition=-1', status: 400, code: 'bad_request' },
  { what: 'minPosition repeated', method: 'GET', url: '/v1/nodes?minPosition=1&minPosition=2', status: 400, code: 'bad_request' },
  { what: 'limit 0', method: 'GET', url: '/v1/nodes?limit=0', status: 400, code: 'bad_request' },
  { what: 'limit too big', method: 'GET', url: '/v1/nodes?limit=100000', status: 400, code: 'bad_request' },
  { what: 'unknown query param', method: 'GET', url: '/v1/nodes?color=blue', status: 400, code: 'bad_request' },
  { what: 'history from 0', method: 'GET', url: '/v1/nodes/n_1/events?from=0', status: 400, code: 'bad_request' },
  { what: 'state at a float', method: 'GET', url: '/v1/nodes/n_1/state?at=1.5', status: 400, code: 'bad_request' },
  { what: 'cancel with an unknown field', method: 'POST', url: '/v1/jobs/j_1/cancel', body: { reason: 'x', force: true }, status: 400, code: 'bad_request' },
  { what: 'cancel reason too long', method: 'POST', url: '/v1/jobs/j_1/cancel', body: { reason: long(501) }, status: 400, code: 'bad_request' },
  // issue 10: host-key trust; issue 12: expectPlaybook
  { what: 'trust without a body', method: 'POST', url: '/v1/nodes/n_1/trust-host-key', status: 400, code: 'bad_request' },
  { what: 'trust with an MD5 fingerprint', method: 'POST', url: '/v1/nodes/n_1/trust-host-key', body: { fingerprint: 'b7:2f:30:00:00:00:00:00:00:00:00:00:00:00:00:01' }, status: 400, code: 'bad_request' },
  { what: 'trust with a padded SHA256 fingerprint', method: 'POST', url: '/v1/nodes/n_1/trust-host-key', body: { fingerprint: `SHA256:${long(43)}=` }, status: 400, code: 'bad_request' },
  { what: 'trust with a public key too', method: 'POST', url: '/v1/nodes/n_1/trust-host-key', body: { fingerprint: `SHA256:${long(43)}`, publicKey: 'ssh-ed25519 AAAA' }, status: 400, code: 'bad_request' },
  { what: 'trust of a node that does not exist', method: 'POST', url: '/v1/nodes/n_nobody/trust-host-key', body: { fingerprint: `SHA256:${long(43)}` }, status: 404, code: 'not_found' },
  { what: 'expectPlaybook in upper case', body: nodeBody({ expectPlaybook: 'A'.repeat(64) }), status: 400, code: 'bad_request' },
  { what: 'expectPlaybook too short', body: nodeBody({ expectPlaybook: 'a'.repeat(63) }), status: 400, code: 'bad_request' },
  { what: 'stale expectPlaybook on create', body: nodeBody({ expectPlaybook: '0'.repeat(64) }), status: 409, code: 'playbook_digest_mismatch' },
  { what: 'expectPlaybook not a string on re-provision', method: 'POST', url: '/v1/nodes/n_1/provision', body: { expectPlaybook: 1 }, status: 400, code: 'bad_request' },
  { what: 'stale expectPlaybook on re-provision', method: 'POST', url: '/v1/nodes/n_1/provision', body: { expectPlaybook: '0'.repeat(64) }, status: 409, code: 'playbook_digest_mismatch' },
  { what: 'rebuild of an unknown projection', method: 'POST', url: '/v1/projections/rebuild', body: { name: 'users' }, status: 400, code: 'bad_request' },
  { what: 'idempotency key too long', body: nodeBody(), headers: { 'idempotency-key': long(201) }, status: 400, code: 'bad_request' },
  { what: 'idempotency key with spaces', body: nodeBody(), headers: { 'idempotency-key': 'a b' }, status: 400, code: 'bad_request' },
  // wrong content types and invalid JSON
  { what: 'text/plain body', raw: JSON.stringify(nodeBody()), headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
  { what: 'form body', raw: 'name=web-1&serverType=cx22&location=fsn1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { what: 'xml body', raw: '<node name="web-1"/>', headers: { 'content-type': 'application/xml' }, status: 415, code: 'unsupported_media_type' },
  { what: 'octet-stream body', raw: 'AAAA', headers: { 'content-type': 'application/octet-stream' }, status: 415, code: 'unsupported_media_type' },
  { what: 'multipart body', raw: '--x\r\n\r\n--x--', headers: { 'content-type': 'multipart/form-data; boundary=x' }, status: 415, code: 'unsupported_media_type' },
  { what: 'truncated JSON', raw: '{"name":"web-1"', headers: json, status: 400, code: 'bad_request' },
  { what: 'trailing comma', raw: '{"name":"web-1",}', headers: json, status: 400, code: 'bad_request' },
  { what: 'single quotes', raw: "{'name':'web-1'}", headers: json, status: 400, code: 'bad_request' },
  { what: 'empty JSON body', raw: '', headers: json, status: 400, code: 'bad_request' },
  { what: 'garbage bytes', raw: '\u0000\u0001\u0002', headers: json, status: 400, code: 'bad_request' },
  { what: 'JSON with comments', raw: '{/* hi */"name":"web-1"}', headers: json, status: 400, code: 'bad_request' },
];

describe('bad input', () => {
  it('has at least 50 cases', () => expect(cases.length).toBeGreaterThanOrEqual(50));

  it.each(cases.map((c) => [c.what, c] as const))('%s → 4xx with a stable code and no event', async (_what, c) => {
    const before = await h.store.lastPosition();
    const payload = c.raw ?? (c.body === undefined ? undefined : JSON.stringify(c.body));
    const headers = { ...AUTH, ...(c.body !== undefined ? json : {}), ...c.headers };
    const res = await h.app.inject({ method: c.method ?? 'POST', url: c.url ?? '/v1/nodes', headers, ...(payload === undefined ? {} : { payload }) });
    expect(res.statusCode).toBe(c.status);
    const body = res.json<{ error: { code: string; message: string; details?: unknown } }>();
    expect(body.error.code).toBe(c.code);
    expect(body.error.message).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
    expect(await h.store.lastPosition()).toBe(before);
  });

  it('names the offending field in the details', async () => {
    const res = await h.call('POST', '/v1/nodes', nodeBody({ name: 'Bad_Name', sshPort: 0 }));
    const issues = res.json<{ error: { details: { issues: Array<{ in: string; path: string }> } } }>().error.details.issues;
    expect(issues.map((i) => i.path).sort()).toEqual(['/name', '/sshPort']);
    expect(issues.every((i) => i.in === 'body')).toBe(true);
  });

  it('never logged an unexpected error', () => {
    expect(h.logLines.filter((l) => l.includes('unexpected error'))).toEqual([]);
  });
});
