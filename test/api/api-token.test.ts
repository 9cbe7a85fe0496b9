import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateApiToken } from '../../src/api/api-token.ts';
import { captureLogger } from '../support/silent-logger.ts';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('loadOrCreateApiToken', () => {
  it('uses PRESSLUFT_API_TOKEN when set and writes nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-token-'));
    const { logger } = captureLogger();
    expect(await loadOrCreateApiToken({ dataDir: dir, fromEnv: 'from-env-token-123456', logger })).toBe('from-env-token-123456');
    await expect(stat(join(dir, 'api-token'))).rejects.toThrow();
  });

  it('generates a token once, stores it 0600, reuses it, and logs where it is but never what it is', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-token-'));
    const { logger, lines } = captureLogger();
    const token = await loadOrCreateApiToken({ dataDir: dir, fromEnv: undefined, logger });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const path = join(dir, 'api-token');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, 'utf8')).trim()).toBe(token);
    expect(await loadOrCreateApiToken({ dataDir: dir, fromEnv: undefined, logger })).toBe(token);
    expect(lines.some((l) => l.includes(path))).toBe(true);
    expect(lines.join('\n')).not.toContain(token);
  });

  it('agrees on one token when two processes start at once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-token-'));
    const { logger } = captureLogger();
    const tokens = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateApiToken({ dataDir: dir, fromEnv: undefined, logger })));
    expect(new Set(tokens).size).toBe(1);
  });
});
