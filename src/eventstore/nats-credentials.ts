import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * The embedded nats-server's users, kept in a 0600 file in the data dir. The application
 * user is what every pressluft process connects with; the operator user has full rights and
 * exists only for maintenance by hand (docs/operations.md). Neither is ever logged, put in argv
 * or in the environment of a child.
 */
const userSchema = z.object({ user: z.string().regex(/^[a-z0-9-]+$/), password: z.string().min(32) });
const credentialsSchema = z.object({ version: z.literal(1), app: userSchema, operator: userSchema });

export type NatsUser = z.infer<typeof userSchema>;
export type NatsCredentials = z.infer<typeof credentialsSchema>;

export const APP_USER = 'pressluft-app';
export const OPERATOR_USER = 'pressluft-operator';

const newPassword = (): string => randomBytes(32).toString('base64url');

/** Loads the credentials file, or creates it (0600) with fresh random passwords. */
export const loadOrCreateNatsCredentials = async (file: string): Promise<NatsCredentials> => {
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text !== null) {
    await chmod(file, 0o600);
    return credentialsSchema.parse(JSON.parse(text));
  }
  const creds: NatsCredentials = { version: 1, app: { user: APP_USER, password: newPassword() }, operator: { user: OPERATOR_USER, password: newPassword() } };
  // 'wx': two starts racing on a fresh data dir must not overwrite each other's passwords.
  await writeFile(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return credentialsSchema.parse(JSON.parse(await readFile(file, 'utf8')));
};

/** Reads an existing credentials file (a worker attaching to the embedded server). */
export const readNatsCredentials = async (file: string): Promise<NatsCredentials> => credentialsSchema.parse(JSON.parse(await readFile(file, 'utf8')));
