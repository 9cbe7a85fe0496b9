import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { useListeningApi } from './listening-api.ts';

const tls = { cert: Buffer.alloc(0), key: Buffer.alloc(0) };
let dir = '';

// A throwaway self-signed certificate for 127.0.0.1, made before the server is built.
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-tls-'));
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  tls.cert = await readFile(join(dir, 'cert.pem'));
  tls.key = await readFile(join(dir, 'key.pem'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const api = useListeningApi({ tls }, 'ptls');

const httpsGet = (url: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    get(url, { ca: tls.cert }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });

describe('TLS (PRESSLUFT_TLS_CERT / PRESSLUFT_TLS_KEY)', () => {
  it('serves HTTPS with the given certificate and no plaintext', async () => {
    const https = `https://127.0.0.1:${api.port}`;
    expect(await httpsGet(`${https}/healthz`)).toMatchObject({ status: 200 });
    await expect(fetch(`http://127.0.0.1:${api.port}/healthz`)).rejects.toThrow();
  });

  it('lets the config listen beyond loopback once both files are named', () => {
    const config = loadConfig({ PRESSLUFT_HOST: '0.0.0.0', PRESSLUFT_TLS_CERT: join(dir, 'cert.pem'), PRESSLUFT_TLS_KEY: join(dir, 'key.pem') });
    expect(config.http.tls).toEqual({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
  });
});

describe('transport rules in the config (CONFIG_INVALID naming the variable)', () => {
  const refusal = (env: Record<string, string>): { code: string; variables: unknown } | null => {
    try {
      loadConfig(env);
      return null;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return { code: e.code, variables: e.details?.variables };
    }
  };

  it('refuses to listen beyond loopback without TLS or PRESSLUFT_ALLOW_PLAINTEXT=1', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) expect(refusal({ PRESSLUFT_HOST: host })).toEqual({ code: 'CONFIG_INVALID', variables: ['PRESSLUFT_HOST'] });
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(refusal({ PRESSLUFT_HOST: host })).toBeNull();
    expect(refusal({ PRESSLUFT_HOST: '0.0.0.0', PRESSLUFT_ALLOW_PLAINTEXT: '1' })).toBeNull();
    expect(refusal({ PRESSLUFT_TLS_CERT: join(dir, 'cert.pem') })).toEqual({ code: 'CONFIG_INVALID', variables: ['PRESSLUFT_TLS_KEY'] });
    expect(refusal({ PRESSLUFT_TLS_CERT: join(dir, 'cert.pem'), PRESSLUFT_TLS_KEY: join(dir, 'missing.pem') })).toEqual({ code: 'CONFIG_INVALID', variables: ['PRESSLUFT_TLS_KEY'] });
  });

  it('requires https:// for HCLOUD_ENDPOINT unless it is a loopback address', () => {
    expect(refusal({ HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: 'http://api.hetzner.cloud/v1' })).toEqual({ code: 'CONFIG_INVALID', variables: ['HCLOUD_ENDPOINT'] });
    expect(refusal({ HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: 'http://10.0.0.1:4010/v1' })).toEqual({ code: 'CONFIG_INVALID', variables: ['HCLOUD_ENDPOINT'] });
    for (const ok of ['https://api.hetzner.cloud/v1', 'http://127.0.0.1:4010/v1', 'http://[::1]:4010/v1', 'http://localhost:4010/v1']) {
      expect(refusal({ HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: ok })).toBeNull();
    }
  });
});
