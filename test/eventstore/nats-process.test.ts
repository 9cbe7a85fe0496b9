import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer } from '../../src/eventstore/nats-process.ts';
import { alive, serversUsingConfig } from '../../src/eventstore/nats-stale-server.ts';

let dir: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-nats-process-'));
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

const started = (c: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> =>
  new Promise((resolve, reject) => {
    let out = '';
    c.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) resolve(m);
    });
    c.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });


describe('one nats-server per store', () => {
  it('stops a server left on the store by a dead owner before it starts its own', async () => {
    const storeDir = join(dir, 'stale');
    const first = await startNatsServer({ storeDir });
    await first.stop();
    // An orphan as an older pressluft left it: nats-server on this config, without our lock or pid file.
    const orphan = spawn('nats-server', ['-c', first.configFile], { stdio: 'ignore', detached: true });
    children.push(orphan);
    await expect.poll(() => serversUsingConfig(first.configFile), { timeout: 15_000, interval: 50 }).toEqual([orphan.pid]);
    const next = await startNatsServer({ storeDir, port: first.port });
    try {
      expect(alive(orphan.pid!)).toBe(false);
      expect(await serversUsingConfig(first.configFile)).toEqual([next.pid]);
    } finally {
      await next.stop();
    }
  });

  it('refuses a store whose server belongs to another live process, with NATS_STORE_IN_USE', { timeout: 60_000 }, async () => {
    const storeDir = join(dir, 'in-use');
    const owner = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../app/fixtures/hold-nats-store.ts', import.meta.url)), storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(owner);
    const serverPid = Number((await started(owner, /holding (\d+)/))[1]);
    await expect(startNatsServer({ storeDir })).rejects.toMatchObject({ code: 'NATS_STORE_IN_USE', details: { serverPid, ownerPid: owner.pid } });
    expect(alive(serverPid)).toBe(true);
    // Its owner dies by SIGKILL: the kernel takes the server with it (pdeathsig), and the store is free again.
    owner.kill('SIGKILL');
    await expect.poll(() => alive(serverPid), { timeout: 15_000, interval: 50 }).toBe(false);
    const next = await startNatsServer({ storeDir });
    await next.stop();
  });

  it('cannot start a second server while the store lock is held', async () => {
    const storeDir = join(dir, 'locked');
    const first = await startNatsServer({ storeDir });
    await first.stop();
    const holder = spawn('flock', ['-n', '-F', join(storeDir, 'nats-server.lock'), 'sleep', '30'], { stdio: 'ignore' });
    children.push(holder);
    // flock -F execs the command in its own pid once it holds the lock: `sleep` running means the lock is held.
    await expect.poll(() => readFile(`/proc/${holder.pid}/cmdline`, 'utf8').then((c) => c.split('\0')[0]).catch(() => 'gone'), { timeout: 15_000, interval: 20 }).toBe('sleep');
    await expect(startNatsServer({ storeDir })).rejects.toMatchObject({ code: 'NATS_SERVER_FAILED', message: expect.stringMatching(/holds the lock/) });
    holder.kill('SIGKILL');
  });
});

describe('the embedded nats-server environment', () => {
  it('holds none of the control plane’s secrets', async () => {
    const secret = 'pressluft-env-probe-0123456789';
    process.env.HCLOUD_TOKEN = secret;
    const server = await startNatsServer({ storeDir: join(dir, 'env') });
    try {
      const environ = await readFile(`/proc/${server.pid}/environ`, 'utf8');
      expect(environ).toContain('PATH=');
      expect(environ).not.toContain(secret);
      expect(environ.split('\0').filter(Boolean).map((kv) => kv.split('=')[0])).toEqual(['PATH']);
    } finally {
      delete process.env.HCLOUD_TOKEN;
      await server.stop();
    }
  });
});
