import { appendFile, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computePlaybookDigest, playbookBundle } from '../../src/ansible/playbook-bundle.ts';

/** The digest AnsibleStarted records and `expectPlaybook` is compared with, over a copy of the real ansible/ tree. */
const ANSIBLE = join(import.meta.dirname, '../../ansible');
let dir = '';
let copy = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pressluft-bundle-'));
  copy = join(dir, 'ansible');
  await cp(ANSIBLE, copy, { recursive: true });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('playbook bundle', () => {
  it('is a SHA-256 that is stable across computations, and the same for a copy of the tree', async () => {
    const first = await computePlaybookDigest(copy);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await computePlaybookDigest(copy)).toBe(first);
    expect(await computePlaybookDigest(ANSIBLE)).toBe(first);
  });

  it('changes when a role file changes, and back when the change is undone', async () => {
    const before = await computePlaybookDigest(copy);
    const file = join(copy, 'roles/nginx/tasks/main.yml');
    const original = await readFile(file);
    await appendFile(file, '# edited\n');
    expect(await computePlaybookDigest(copy)).not.toBe(before);
    await writeFile(file, original);
    expect(await computePlaybookDigest(copy)).toBe(before);
  });

  it('changes when a file is renamed, even with the same content', async () => {
    const before = await computePlaybookDigest(copy);
    const [from, to] = [join(copy, 'roles/redis/defaults/main.yml'), join(copy, 'roles/redis/defaults/other.yml')];
    await rename(from, to);
    try {
      expect(await computePlaybookDigest(copy)).not.toBe(before);
    } finally {
      await rename(to, from);
    }
  });

  it('ignores __pycache__, *.pyc and *.retry', async () => {
    const before = await computePlaybookDigest(copy);
    await mkdir(join(copy, 'callback_plugins/__pycache__'), { recursive: true });
    await writeFile(join(copy, 'callback_plugins/__pycache__/pressluft.cpython-311.pyc'), 'bytecode');
    await writeFile(join(copy, 'callback_plugins/stray.pyc'), 'bytecode');
    await writeFile(join(copy, 'playbooks/node-provision.retry'), 'web-1\n');
    expect(await computePlaybookDigest(copy)).toBe(before);
  });

  it('is computed once per process, with the package version', async () => {
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    const a = playbookBundle(copy);
    expect(playbookBundle(copy)).toBe(a);
    expect(await a).toEqual({ digest: await computePlaybookDigest(copy), version: pkg.version });
  });
});
