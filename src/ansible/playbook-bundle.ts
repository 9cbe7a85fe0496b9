import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';

/** What a run executes: the digest of the `ansible/` tree and the product version that shipped it. */
export interface PlaybookBundle {
  /** SHA-256, 64 lowercase hex characters. */
  digest: string;
  /** package.json "version". */
  version: string;
}

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** Bytes Ansible never reads and that change without anyone editing the tree (Python's byte-code cache, retry files). */
const ignored = (name: string, isDir: boolean): boolean => (isDir ? name === '__pycache__' : name.endsWith('.pyc') || name.endsWith('.retry'));

/** Every regular file below `dir`, as sorted relative paths with `/` separators. Symlinks are not followed. */
const regularFiles = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      if (ignored(entry.name, entry.isDirectory())) continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  await walk(dir);
  // Byte order, not the locale's: the digest must not depend on where it is computed.
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
};

/**
 * SHA-256 over every regular file's relative path and content, each entry framed as
 * `path\0<byte length>\0content`, so that no two trees hash alike by moving bytes across a boundary.
 */
export const computePlaybookDigest = async (ansibleDir: string): Promise<string> => {
  const hash = createHash('sha256');
  for (const path of await regularFiles(ansibleDir)) {
    const content = await readFile(join(ansibleDir, path));
    hash.update(`${path}\0${content.length}\0`);
    hash.update(content);
  }
  return hash.digest('hex');
};

export const productVersion = async (): Promise<string> => {
  const pkg = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || !pkg.version) throw new Error(`${PACKAGE_JSON.pathname} has no "version"`);
  return pkg.version;
};

const cache = new Map<string, Promise<PlaybookBundle>>();

/**
 * The bundle of `ansibleDir`, computed once per process (at start-up): the tree a running control
 * plane executes is the one it started with, and every run records this digest.
 */
export const playbookBundle = (ansibleDir: string): Promise<PlaybookBundle> => {
  const key = resolve(ansibleDir);
  let bundle = cache.get(key);
  if (!bundle) {
    bundle = Promise.all([computePlaybookDigest(key), productVersion()]).then(([digest, version]) => ({ digest, version }));
    // A failed computation (a missing dir) is not remembered: the next call tries again.
    bundle.catch(() => cache.delete(key));
    cache.set(key, bundle);
  }
  return bundle;
};
