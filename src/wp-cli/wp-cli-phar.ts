import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';

/**
 * The WP-CLI phar the wp_cli role copies to a node, checked on the control plane before any
 * provider call: a job that cannot install WP-CLI must not buy a server first.
 */
export interface WpCliPhar {
  path: string;
  /** The wp_cli role checks the file again against this before it copies it (ansible/roles/wp_cli). */
  sha256: string;
}

export class WpCliUnavailable extends AppError {
  constructor(message: string, details: Record<string, unknown>) {
    super('WP_CLI_UNAVAILABLE', message, false, details);
  }
}

const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `must be ${n} lowercase hex characters`);

export const wpCliReleaseSchema = z.strictObject({
  version: z.string().regex(/^\d+\.\d+\.\d+$/),
  url: z.url({ protocol: /^https?$/ }),
  sha512: hex(128),
});
export type WpCliRelease = z.infer<typeof wpCliReleaseSchema>;

/** Where the phar comes from: an operator's local file (the explicit override) or the pinned release, cached in the data dir. */
export const wpCliSourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('local'), path: z.string().min(1), sha256: hex(64) }),
  z.strictObject({
    kind: z.literal('release'),
    release: wpCliReleaseSchema,
    cacheDir: z.string().min(1),
    timeoutMs: z.number().int().min(1).default(120_000),
    /** The 2.12.0 phar is about 7 MB; anything far larger is not WP-CLI. */
    maxBytes: z.number().int().min(1).default(64 * 1024 * 1024),
  }),
]);
export type WpCliSource = z.input<typeof wpCliSourceSchema>;

const digest = (algorithm: 'sha256' | 'sha512', data: Buffer): string => createHash(algorithm).update(data).digest('hex');

const readIfExists = (path: string): Promise<Buffer | null> =>
  readFile(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });

const verifyLocal = async (path: string, sha256: string): Promise<WpCliPhar> => {
  const data = await readIfExists(path);
  if (!data) throw new WpCliUnavailable(`PRESSLUFT_WP_CLI_PHAR ${path} does not exist`, { path });
  const actual = digest('sha256', data);
  if (actual !== sha256) throw new WpCliUnavailable(`PRESSLUFT_WP_CLI_PHAR ${path} does not match PRESSLUFT_WP_CLI_SHA256`, { path, expected: sha256, actual });
  return { path, sha256 };
};

const download = async (release: WpCliRelease, timeoutMs: number, maxBytes: number): Promise<Buffer> => {
  const fail = (reason: string): WpCliUnavailable => new WpCliUnavailable(`WP-CLI ${release.version} could not be downloaded from ${release.url}: ${reason}`, { url: release.url, version: release.version });
  let res: Response;
  try {
    res = await fetch(release.url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e));
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw fail(`HTTP ${res.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > maxBytes) throw fail(`larger than ${maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
  } catch (e) {
    throw e instanceof WpCliUnavailable ? e : fail(e instanceof Error ? e.message : String(e));
  }
  return Buffer.concat(chunks);
};

/** Write to a temporary name in the same directory, then rename: a reader never sees half a phar. */
const writeAtomically = async (path: string, data: Buffer): Promise<void> => {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o644, flag: 'wx' });
    await chmod(tmp, 0o644); // the umask may have narrowed the mode; Ansible's copy reads it as any user
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
};

const ensureRelease = async (s: Extract<z.output<typeof wpCliSourceSchema>, { kind: 'release' }>): Promise<WpCliPhar> => {
  const path = join(s.cacheDir, `wp-cli-${s.release.version}.phar`);
  const cached = await readIfExists(path);
  // A cached file is trusted only while it still has the pinned digest; otherwise it is fetched again.
  if (cached && digest('sha512', cached) === s.release.sha512) return { path, sha256: digest('sha256', cached) };
  const data = await download(s.release, s.timeoutMs, s.maxBytes);
  const actual = digest('sha512', data);
  if (actual !== s.release.sha512) {
    throw new WpCliUnavailable(`WP-CLI ${s.release.version} from ${s.release.url} does not match the pinned sha512`, { url: s.release.url, version: s.release.version, expected: s.release.sha512, actual });
  }
  await mkdir(s.cacheDir, { recursive: true, mode: 0o700 });
  await writeAtomically(path, data);
  return { path, sha256: digest('sha256', data) };
};

/**
 * The port the saga calls before its first provider call. A verified phar is remembered for the
 * process (concurrent callers share one download); a failure is not, so the next job tries again.
 */
export const wpCliPharPort = (source: WpCliSource): (() => Promise<WpCliPhar>) => {
  const s = wpCliSourceSchema.parse(source);
  let verified: Promise<WpCliPhar> | null = null;
  return () => {
    verified ??= (s.kind === 'local' ? verifyLocal(s.path, s.sha256) : ensureRelease(s)).catch((e: unknown) => {
      verified = null;
      throw e instanceof WpCliUnavailable ? e : new WpCliUnavailable(`WP-CLI phar: ${e instanceof Error ? e.message : String(e)}`, {});
    });
    return verified;
  };
};
