import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { createLogger } from '../../src/logging/logger.ts';

/** A runner whose pino output is captured in memory and whose temp dirs go under a fresh root. */
export const harness = async () => {
  const tmpRoot = await mkdtemp(join(tmpdir(), 'pressluft-runner-test-'));
  const scratch = await mkdtemp(join(tmpdir(), 'pressluft-scratch-'));
  const logged: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged.push(chunk.toString());
      done();
    },
  });
  const runner = new AnsiblePlaybookRunner({ logger: createLogger('debug', sink), tmpRoot, killGraceMs: 1_000 });
  return {
    runner,
    tmpRoot,
    scratch,
    log: () => logged.join(''),
    runDirs: () => readdir(tmpRoot),
    cleanup: () => Promise.all([rm(tmpRoot, { recursive: true, force: true }), rm(scratch, { recursive: true, force: true })]),
  };
};

export const localNode = { host: '127.0.0.1', port: 22, user: 'root', connection: 'local' as const };

/** A loopback port nothing listens on: bind an ephemeral port, then release it. */
export const closedLoopbackPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

/** Pids of live (non-zombie) processes in a process group, read independently of the runner. */
export const survivorsOfGroup = async (pgid: number): Promise<number[]> => {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] && fields[0] !== 'Z' && Number(fields[2]) === pgid) found.push(Number(pid));
  }
  return found;
};

export const waitForFile = async (path: string, ms: number): Promise<string> => {
  const until = Date.now() + ms;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text !== null && text.trim() !== '') return text.trim();
    if (Date.now() > until) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Live processes whose command line mentions `marker` (a run root), with their command name. */
export const processesMentioning = async (marker: string): Promise<Array<{ pid: number; comm: string }>> => {
  const found: Array<{ pid: number; comm: string }> = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    if (Number(pid) === process.pid) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push({ pid: Number(pid), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
  }
  return found;
};

/** Regular files under `root` (recursively) whose content holds any of `needles`. */
export const filesContaining = async (root: string, needles: string[]): Promise<string[]> => {
  const hits: string[] = [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    const text = await readFile(path, 'utf8').catch(() => '');
    if (needles.some((n) => text.includes(n))) hits.push(path);
  }
  return hits;
};
