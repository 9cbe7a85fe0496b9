import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { natsConnectionOptions } from '../../src/eventstore/nats-auth.ts';

let dir: string;
let credsFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-nats-config-'));
  credsFile = join(dir, 'app.creds');
  await writeFile(credsFile, 'not parsed at start-up', { mode: 0o600 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const refusal = (env: NodeJS.ProcessEnv): ConfigError => {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected CONFIG_INVALID');
};

describe('NATS settings', () => {
  it('uses the embedded server, without external auth, when NATS_URL is unset', () => {
    expect(loadConfig({}).nats).toMatchObject({ url: undefined, auth: { kind: 'none' } });
  });

  it('accepts a comma-separated server list', () => {
    const c = loadConfig({ NATS_URL: 'nats://127.0.0.1:4222,nats://127.0.0.1:4223,tls://127.0.0.1:4224' });
    expect(c.nats.url).toBe('nats://127.0.0.1:4222,nats://127.0.0.1:4223,tls://127.0.0.1:4224');
    expect(natsConnectionOptions(c.nats.url!, c.nats.auth).servers).toEqual(['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223', 'tls://127.0.0.1:4224']);
  });

  it.each([['nats://a:1,,nats://b:2'], ['nats://a:1, nats://b:2'], ['http://a:1'], ['nats://a:1,http://b:2']])('refuses the server list %j naming NATS_URL', (url) => {
    expect(refusal({ NATS_URL: url }).details).toEqual({ variables: ['NATS_URL'] });
  });

  it('takes a creds file, user and password, or a token, each into connection options and never into the URL', () => {
    const url = 'nats://127.0.0.1:4222';
    const creds = loadConfig({ NATS_URL: url, NATS_CREDS: credsFile }).nats;
    expect(creds.auth).toEqual({ kind: 'creds', file: credsFile });
    expect(natsConnectionOptions(url, creds.auth).authenticator).toBeTypeOf('function');

    const user = loadConfig({ NATS_URL: url, NATS_USER: 'pl', NATS_PASSWORD: 's3cret-pw' }).nats;
    expect(natsConnectionOptions(url, user.auth)).toMatchObject({ servers: [url], user: 'pl', pass: 's3cret-pw' });

    const token = loadConfig({ NATS_URL: url, NATS_TOKEN: 't0ken' }).nats;
    expect(natsConnectionOptions(url, token.auth)).toMatchObject({ servers: [url], token: 't0ken' });
    expect(JSON.stringify([creds.url, user.url, token.url])).not.toMatch(/s3cret|t0ken/);
  });

  it('refuses two auth methods, naming the second', () => {
    const e = refusal({ NATS_URL: 'nats://127.0.0.1:4222', NATS_USER: 'pl', NATS_PASSWORD: 'pw', NATS_TOKEN: 't' });
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details).toEqual({ variables: ['NATS_TOKEN'] });
  });

  it('refuses a user without a password and a password without a user', () => {
    expect(refusal({ NATS_URL: 'nats://127.0.0.1:4222', NATS_USER: 'pl' }).details).toEqual({ variables: ['NATS_PASSWORD'] });
    expect(refusal({ NATS_URL: 'nats://127.0.0.1:4222', NATS_PASSWORD: 'pw' }).details).toEqual({ variables: ['NATS_USER'] });
  });

  it('refuses a creds file that does not exist', () => {
    expect(refusal({ NATS_URL: 'nats://127.0.0.1:4222', NATS_CREDS: join(dir, 'missing.creds') }).details).toEqual({ variables: ['NATS_CREDS'] });
  });

  it('refuses external auth without NATS_URL: the embedded server makes its own users', () => {
    expect(refusal({ NATS_TOKEN: 't' }).details).toEqual({ variables: ['NATS_TOKEN'] });
  });

  it('never puts a password into the error message', () => {
    const e = refusal({ NATS_URL: 'nats://127.0.0.1:4222', NATS_USER: 'pl', NATS_PASSWORD: 'hunter2-secret', NATS_TOKEN: 'tok-secret' });
    expect(e.message).not.toMatch(/hunter2|tok-secret/);
  });
});

describe('PRESSLUFT_STREAM_REPLICAS', () => {
  it('defaults to 1 and takes 3 with a NATS cluster', () => {
    expect(loadConfig({}).nats.replicas).toBe(1);
    expect(loadConfig({ NATS_URL: 'nats://127.0.0.1:4222,nats://127.0.0.1:4223', PRESSLUFT_STREAM_REPLICAS: '3' }).nats.replicas).toBe(3);
  });

  it.each([['2'], ['0'], ['5'], ['three']])('refuses %j naming the variable', (replicas) => {
    const e = refusal({ NATS_URL: 'nats://127.0.0.1:4222', PRESSLUFT_STREAM_REPLICAS: replicas });
    expect(e.details).toEqual({ variables: ['PRESSLUFT_STREAM_REPLICAS'] });
    expect(e.message).toContain('must be 1 (one nats-server) or 3 (a NATS cluster)');
  });

  it('refuses 3 on the embedded server, which is a single server', () => {
    const e = refusal({ PRESSLUFT_STREAM_REPLICAS: '3' });
    expect(e.details).toEqual({ variables: ['PRESSLUFT_STREAM_REPLICAS'] });
    expect(e.message).toContain('needs a NATS cluster');
  });
});
