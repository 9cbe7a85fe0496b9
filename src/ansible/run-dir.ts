import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'pressluft-ansible-';
const OWNER = 'owner.pid';
/** A dir without an owner file is only taken for abandoned once it is this old (it may be mid-create). */
const ORPHAN_GRACE_MS = 60_000;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * The per-job temp dir: 0700 (mkdtemp's mode), every file 0600 and created exclusively, so
 * nothing else on the control plane can read the inventory, the extra-vars or the key.
 * It records the owning process, so a later run can remove what a killed worker left behind.
 */
export class RunDir {
  private constructor(readonly path: string) {}

  static async create(root = tmpdir()): Promise<RunDir> {
    const dir = new RunDir(await mkdtemp(join(root, PREFIX)));
    await dir.write(OWNER, `${process.pid}\n`);
    return dir;
  }

  /**
   * Removes the dirs of runs whose process is gone: a SIGKILLed worker cannot clean up, and its
   * dir holds a copy of the private key. Returns how many were removed.
   */
  static async sweepAbandoned(root = tmpdir(), now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdir(root).catch(() => [])) {
      if (!name.startsWith(PREFIX)) continue;
      const path = join(root, name);
      const owner = Number.parseInt(await readFile(join(path, OWNER), 'utf8').catch(() => ''), 10);
      const abandoned = Number.isInteger(owner) && owner > 0 ? !alive(owner) : now - (await stat(path).catch(() => ({ mtimeMs: now }))).mtimeMs > ORPHAN_GRACE_MS;
      if (!abandoned) continue;
      await rm(path, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  async write(name: string, content: string): Promise<string> {
    const file = join(this.path, name);
    await writeFile(file, content, { mode: 0o600, flag: 'wx' });
    return file;
  }

  file(name: string): string {
    return join(this.path, name);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}
