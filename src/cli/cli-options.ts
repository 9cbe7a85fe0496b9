import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { API_TOKEN_FILE, readTokenFile } from '../api/api-token.ts';
import { CliError, usageError } from './cli-error.ts';

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Options every API command takes. */
const GLOBAL: OptionSpec = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const globalSchema = z.object({
  url: z.url({ protocol: /^https?$/ }).optional(),
  token: z.string().min(1).optional(),
  json: z.boolean().default(false),
  help: z.boolean().default(false),
});

export interface ParsedArgs<T> {
  global: z.infer<typeof globalSchema>;
  values: T;
  positionals: string[];
}

/** Parses argv with node's parseArgs, then validates every value with zod; any mistake is a usage error (exit 2). */
export const parseCommandArgs = <S extends z.ZodType>(argv: readonly string[], options: OptionSpec, schema: S, usage: string): ParsedArgs<z.infer<S>> => {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...GLOBAL, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(e instanceof Error ? e.message : String(e), usage);
  }
  const { url, token, json, help, ...rest } = parsed.values;
  const g = globalSchema.safeParse({ url, token, json, help });
  if (!g.success) throw usageError(z.prettifyError(g.error), usage);
  if (g.data.help) throw new CliError('help', usage, 0);
  const v = schema.safeParse({ ...rest, _: parsed.positionals });
  if (!v.success) throw usageError(z.prettifyError(v.error), usage);
  return { global: g.data, values: v.data, positionals: parsed.positionals };
};

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Where the API is and how to authenticate: flags, then environment, then the data dir's token file. */
export const resolveConnection = async (g: { url?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv): Promise<{ url: string; token: string }> => {
  const url = (g.url ?? env.PRESSLUFT_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!z.url({ protocol: /^https?$/ }).safeParse(url).success) throw new CliError('usage', `PRESSLUFT_URL is not an http(s) URL: ${url}`, 2);
  const tokenFile = join(resolve(env.PRESSLUFT_DATA_DIR || './.pressluft'), API_TOKEN_FILE);
  const token = g.token ?? (env.PRESSLUFT_API_TOKEN || null) ?? (await readTokenFile(tokenFile));
  if (!token) throw new CliError('unauthorized', `no API token: pass --token, set PRESSLUFT_API_TOKEN, or run where ${tokenFile} exists`, 2);
  return { url, token };
};
