import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { wpCliPharPort, WpCliUnavailable, type WpCliRelease } from '../../src/wp-cli/wp-cli-phar.ts';
import { WP_CLI_RELEASE } from '../../src/wp-cli/wp-cli-release.ts';
import { wpCliAnsibleVars, wpCliSourceFrom } from '../../src/wp-cli/wp-cli-source.ts';

// A stand-in, not WP-CLI (ADR 0021): the tests serve it from loopback and never reach GitHub.
const STAND_IN = Buffer.from('#!/usr/bin/env php\n<?php\nfwrite(STDOUT, "WP-CLI 0.0.0-pressluft-stand-in\\n");\n');
const sha = (alg: 'sha256' | 'sha512', b: Buffer) => createHash(alg).update(b).digest('hex');

let server: Server;
let base: string;
let hits = 0;
let body: Buffer = STAND_IN;
let dir: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    if (req.url !== '/wp-cli.phar') return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(async () => {
  hits = 0;
  body = STAND_IN;
  dir = await mkdtemp(join(tmpdir(), 'pressluft-wp-cli-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const release = (over: Partial<WpCliRelease> = {}): WpCliRelease => ({ version: '0.0.0', url: `${base}/wp-cli.phar`, sha512: sha('sha512', STAND_IN), ...over });
const releasePort = (over: Partial<WpCliRelease> = {}) => wpCliPharPort({ kind: 'release', release: release(over), cacheDir: join(dir, 'wp-cli') });
const expectUnavailable = async (p: Promise<unknown>) => {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(WpCliUnavailable);
  expect(e).toMatchObject({ code: 'WP_CLI_UNAVAILABLE', retryable: false });
  return e as WpCliUnavailable;
};

describe('the pinned release, served from loopback', () => {
  it('downloads the phar once into the cache dir, 0644, and hands over its path and sha256', async () => {
    const phar = await releasePort()();
    expect(phar).toEqual({ path: join(dir, 'wp-cli', 'wp-cli-0.0.0.phar'), sha256: sha('sha256', STAND_IN) });
    expect(await readFile(phar.path)).toEqual(STAND_IN);
    expect((await stat(phar.path)).mode & 0o777).toBe(0o644);
    expect(await readdir(join(dir, 'wp-cli'))).toEqual(['wp-cli-0.0.0.phar']); // no temporary file left behind
    // A second call, and a restarted control plane on the same data dir, download nothing.
    await releasePort()();
    expect(hits).toBe(1);
  });

  it('shares one download between concurrent jobs', async () => {
    const port = releasePort();
    const all = await Promise.all([port(), port(), port()]);
    expect(new Set(all.map((p) => p.path)).size).toBe(1);
    expect(hits).toBe(1);
  });

  it('refuses a phar whose sha512 does not match the pin, and writes nothing', async () => {
    body = Buffer.concat([STAND_IN, Buffer.from('// tampered\n')]);
    const e = await expectUnavailable(releasePort()());
    expect(e.details).toMatchObject({ expected: sha('sha512', STAND_IN), actual: sha('sha512', body) });
    expect(await readdir(dir)).toEqual([]);
  });

  it('is unavailable on a 404', async () => {
    await expectUnavailable(releasePort({ url: `${base}/missing.phar` })());
    expect(hits).toBe(1);
  });

  it('is unavailable when the server is down', async () => {
    const down = createServer();
    down.listen(0, '127.0.0.1');
    await once(down, 'listening');
    const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/wp-cli.phar`;
    await new Promise<void>((r) => down.close(() => r()));
    await expectUnavailable(releasePort({ url: downUrl })());
  });

  it('does not remember a failure: the next job tries again', async () => {
    const port = releasePort();
    body = Buffer.from('a truncated download');
    await expectUnavailable(port());
    body = STAND_IN;
    expect((await port()).sha256).toBe(sha('sha256', STAND_IN));
    expect(hits).toBe(2);
  });

  it('fetches again when the cached file no longer has the pinned digest', async () => {
    await releasePort()();
    await writeFile(join(dir, 'wp-cli', 'wp-cli-0.0.0.phar'), 'corrupted');
    const phar = await releasePort()();
    expect(await readFile(phar.path)).toEqual(STAND_IN);
    expect(hits).toBe(2);
  });

  it('refuses a body larger than the bound', async () => {
    const port = wpCliPharPort({ kind: 'release', release: release(), cacheDir: join(dir, 'wp-cli'), maxBytes: 10 });
    await expectUnavailable(port());
  });
});

describe('the explicit local phar (PRESSLUFT_WP_CLI_PHAR)', () => {
  it('accepts a file with the configured sha256', async () => {
    const path = join(dir, 'stand-in.phar');
    await writeFile(path, STAND_IN);
    expect(await wpCliPharPort({ kind: 'local', path, sha256: sha('sha256', STAND_IN) })()).toEqual({ path, sha256: sha('sha256', STAND_IN) });
  });
  it('refuses a file with another sha256', async () => {
    const path = join(dir, 'stand-in.phar');
    await writeFile(path, 'something else');
    await expectUnavailable(wpCliPharPort({ kind: 'local', path, sha256: sha('sha256', STAND_IN) })());
  });
  it('refuses a missing file', () => expectUnavailable(wpCliPharPort({ kind: 'local', path: join(dir, 'nope.phar'), sha256: sha('sha256', STAND_IN) })()));
});

describe('which phar a configuration installs', () => {
  const env = (over: NodeJS.ProcessEnv = {}) => loadConfig({ PRESSLUFT_DATA_DIR: '/var/lib/pressluft', ...over });
  it('none with the simulator: nothing leaves loopback by default', () => expect(wpCliSourceFrom(env())).toBeNull());
  it('none with a simulator on loopback, token or not: a test never reaches for the real release', () =>
    expect(wpCliSourceFrom(env({ HCLOUD_TOKEN: 'sim-token', HCLOUD_ENDPOINT: 'http://127.0.0.1:4010/v1' }))).toBeNull());
  it('the pinned GitHub release with a real provider, cached in the data dir', () =>
    expect(wpCliSourceFrom(env({ HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: 'https://api.hetzner.cloud/v1' }))).toEqual({
      kind: 'release',
      release: WP_CLI_RELEASE,
      cacheDir: '/var/lib/pressluft/wp-cli',
    }));
  it('the pinned release from PRESSLUFT_WP_CLI_URL when it is set', () =>
    expect(wpCliSourceFrom(env({ PRESSLUFT_WP_CLI_URL: 'http://127.0.0.1:9/wp-cli.phar' }))).toMatchObject({ release: { ...WP_CLI_RELEASE, url: 'http://127.0.0.1:9/wp-cli.phar' } }));
  it('the local override first, even with a real provider', () =>
    expect(wpCliSourceFrom(env({ HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: 'https://api.hetzner.cloud/v1', PRESSLUFT_WP_CLI_PHAR: '/x.phar', PRESSLUFT_WP_CLI_SHA256: 'a'.repeat(64) }))).toEqual({
      kind: 'local',
      path: '/x.phar',
      sha256: 'a'.repeat(64),
    }));
  it('refuses a URL that is not http(s)', () => expect(() => env({ PRESSLUFT_WP_CLI_URL: 'file:///etc/passwd' })).toThrow(/PRESSLUFT_WP_CLI_URL/));
  it('pins a release with a well-formed URL and digest', () => {
    expect(WP_CLI_RELEASE.url).toBe(`https://github.com/wp-cli/wp-cli/releases/download/v${WP_CLI_RELEASE.version}/wp-cli-${WP_CLI_RELEASE.version}.phar`);
    expect(WP_CLI_RELEASE.sha512).toMatch(/^[0-9a-f]{128}$/);
  });
  it('hands Ansible the path and sha256', () => expect(wpCliAnsibleVars({ path: '/p', sha256: 'h' })).toEqual({ wp_cli_phar_src: '/p', wp_cli_sha256: 'h' }));
});

it('refuses PRESSLUFT_WP_CLI_PHAR without its sha256, and the reverse', () => {
  expect(() => loadConfig({ PRESSLUFT_WP_CLI_PHAR: '/x.phar' })).toThrow(/PRESSLUFT_WP_CLI_SHA256: PRESSLUFT_WP_CLI_PHAR and PRESSLUFT_WP_CLI_SHA256 go together/);
  expect(() => loadConfig({ PRESSLUFT_WP_CLI_SHA256: 'a'.repeat(64) })).toThrow(/go together/);
});
