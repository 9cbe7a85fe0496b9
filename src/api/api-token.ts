import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logging/logger.ts';

export const API_TOKEN_FILE = 'api-token';

/**
 * The API token: PRESSLUFT_API_TOKEN when set; otherwise one generated on the first start and
 * kept 0600 in the data dir, so restarts and the CLI reuse it. We log where it is, never what it is.
 */
export const loadOrCreateApiToken = async (o: { dataDir: string; fromEnv: string | undefined; logger: Logger }): Promise<string> => {
  if (o.fromEnv) return o.fromEnv;
  const path = join(o.dataDir, API_TOKEN_FILE);
  const existing = await readTokenFile(path);
  if (existing) {
    o.logger.info({ path }, 'API token read from the data dir (set PRESSLUFT_API_TOKEN to choose your own)');
    return existing;
  }
  const token = randomBytes(32).toString('base64url');
  // 'wx' fails if another process created the file meanwhile; then that one's token wins.
  try {
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const raced = await readTokenFile(path);
    if (raced) return raced;
    throw e;
  }
  await chmod(path, 0o600);
  o.logger.info({ path }, 'generated an API token; it is stored in this file (set PRESSLUFT_API_TOKEN to choose your own)');
  return token;
};

export const readTokenFile = async (path: string): Promise<string | null> => {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    return t.length > 0 ? t : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
};
