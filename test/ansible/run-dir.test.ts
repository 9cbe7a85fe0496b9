import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunDir } from '../../src/ansible/run-dir.ts';

let root = '';
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('run dirs left by killed workers', () => {
  it('removes the dirs (and key copies) of dead runs, and keeps live and fresh ones', async () => {
    root = await mkdtemp(join(tmpdir(), 'pressluft-rundir-test-'));
    const live = await RunDir.create(root);
    const dead = await RunDir.create(root);
    await rm(dead.file('owner.pid'));
    // A pid that certainly has exited: a child we waited for.
    const gone = spawnSync('true').pid!;
    await writeFile(dead.file('owner.pid'), `${gone}\n`);
    await writeFile(dead.file('id_control_plane'), 'secret key copy', { mode: 0o600 });
    const fresh = join(root, 'pressluft-ansible-fresh');
    await mkdir(fresh);
    const stale = join(root, 'pressluft-ansible-stale');
    await mkdir(stale);
    await utimes(stale, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));

    expect(await RunDir.sweepAbandoned(root)).toBe(2);
    expect(existsSync(dead.path)).toBe(false);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live.path)).toBe(true);
    expect(existsSync(fresh)).toBe(true);
    expect((await readdir(root)).sort()).toEqual([live.path.split('/').at(-1), 'pressluft-ansible-fresh'].sort());
  });
});
