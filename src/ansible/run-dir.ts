import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The per-job temp dir: 0700 (mkdtemp's mode), every file 0600 and created exclusively, so
 * nothing else on the control plane can read the inventory, the extra-vars or the key.
 */
export class RunDir {
  private constructor(readonly path: string) {}

  static async create(root = tmpdir()): Promise<RunDir> {
    return new RunDir(await mkdtemp(join(root, 'pressluft-ansible-')));
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
