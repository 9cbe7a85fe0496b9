import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../logging/logger.ts';
import { killRunProcesses } from './process-group.ts';

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
 * nothing else on the control plane can read the inventory, the extra-vars or the agent socket.
 * It records the owning process, so a later start can remove what a killed worker left behind.
 */
export class RunDir {
  private constructor(readonly path: string) {}

  static async create(root = tmpdir()): Promise<RunDir> {
    const dir = new RunDir(await mkdtemp(join(root, PREFIX)));
    await dir.write(OWNER, `${process.pid}\n`);
    return dir;
  }

  /**
   * Removes the dirs of runs whose process is gone: a SIGKILLed worker cannot clean up. First it
   * ends what the run left running, found by the dir's path in the command line: ansible-playbook
   * (its inventory) with its whole process group, the ssh mux master (its control path) and the
   * ssh-agent (its socket), which holds the key. Returns how many dirs were removed.
   */
  static async sweepAbandoned(root = tmpdir(), now = Date.now(), graceMs = 5_000): Promise<number> {
    let removed = 0;
    for (const name of await readdir(root).catch(() => [])) {
      if (!name.startsWith(PREFIX)) continue;
      const path = join(root, name);
      const owner = Number.parseInt(await readFile(join(path, OWNER), 'utf8').catch(() => ''), 10);
      const abandoned = Number.isInteger(owner) && owner > 0 ? !alive(owner) : now - (await stat(path).catch(() => ({ mtimeMs: now }))).mtimeMs > ORPHAN_GRACE_MS;
      if (!abandoned) continue;
      // The trailing slash: a path that only starts like this dir is another dir.
      await killRunProcesses(`${path}/`, graceMs);
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

/**
 * For start-up, whatever the role: a process that died mid-run (OOM killer, kill -9) left its run
 * dir and maybe its processes behind. Logs and swallows errors: a failed sweep must not stop a start.
 */
export const sweepAbandonedRuns = async (logger: Logger, root = tmpdir()): Promise<number> => {
  try {
    const removed = await RunDir.sweepAbandoned(root);
    if (removed > 0) logger.warn({ removed, root }, 'removed the temp dirs (and processes) of Ansible runs whose process died');
    return removed;
  } catch (e) {
    logger.error({ err: e, root }, 'could not sweep abandoned Ansible run dirs');
    return 0;
  }
};
