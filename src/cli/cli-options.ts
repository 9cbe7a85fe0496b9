import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { API_TOKEN_FILE, readTokenFile } from '../api/api-token.ts';
import { CliError, usageError } from './cli-error.ts';

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Options every API command takes. The token never comes from argv: any local user can read argv (ps, /proc). */
const GLOBAL: OptionSpec = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  'token-stdin': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const globalSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }).optional(),
    tokenFile: z.string().min(1).optional(),
    tokenStdin: z.boolean().default(false),
    json: z.boolean().default(false),
    help: z.boolean().default(false),
  })
  .refine((g) => !(g.tokenFile && g.tokenStdin), { message: 'pass --token-file or --token-stdin, not both' });

export type GlobalOptions = z.infer<typeof globalSchema>;

const TOKEN_IN_ARGV = 'a token on the command line is visible to every local user (ps, /proc, shell history): set PRESSLUFT_API_TOKEN, or pass --token-file FILE or --token-stdin';

export interface ParsedArgs<T> {
  global: z.infer<typeof globalSchema>;
  values: T;
  positionals: string[];
}

/** Parses argv with node's parseArgs, then validates every value with zod; any mistake is a usage error (exit 2). */
export const parseCommandArgs = <S extends z.ZodType>(argv: readonly string[], options: OptionSpec, schema: S, usage: string): ParsedArgs<z.infer<S>> => {
  // Refused before parsing, so the value is never echoed in an error.
  if (argv.some((a) => a === '--token' || a.startsWith('--token='))) throw usageError(`--token is not accepted: ${TOKEN_IN_ARGV}`, usage);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...GLOBAL, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(e instanceof Error ? e.message : String(e), usage);
  }
  const { url, 'token-file': tokenFile, 'token-stdin': tokenStdin, json, help, ...rest } = parsed.values;
  const g = globalSchema.safeParse({ url, tokenFile, tokenStdin, json, help });
  if (!g.success) throw usageError(z.prettifyError(g.error), usage);
  if (g.data.help) throw new CliError('help', usage, 0);
  const v = schema.safeParse({ ...rest, _: parsed.positionals });
  if (!v.success) throw usageError(z.prettifyError(v.error), usage);
  return { global: g.data, values: v.data, positionals: parsed.positionals };
};

export const DEFAULT_URL = 'http://127.0.0.1:8080';

const MAX_TOKEN_BYTES = 4096;

/** The whole of stdin, trimmed (`pass show pressluft | pressluft node list --token-stdin`). */
const readStdinToken = async (stdin: NodeJS.ReadableStream): Promise<string> => {
  let text = '';
  for await (const chunk of stdin) {
    text += chunk.toString();
    if (text.length > MAX_TOKEN_BYTES) throw new CliError('usage', `--token-stdin: more than ${MAX_TOKEN_BYTES} bytes on stdin`, 2);
  }
  const token = text.trim();
  if (!token) throw new CliError('usage', '--token-stdin: stdin was empty', 2);
  return token;
};

const readGivenTokenFile = async (path: string): Promise<string> => {
  const token = await readTokenFile(resolve(path)).catch(() => null);
  if (!token) throw new CliError('usage', `--token-file: ${path} is missing, unreadable or empty`, 2);
  return token;
};

/** Where the API is and how to authenticate: --token-stdin or --token-file, then PRESSLUFT_API_TOKEN, then the data dir's token file. */
export const resolveConnection = async (
  g: Pick<GlobalOptions, 'url' | 'tokenFile' | 'tokenStdin'>,
  env: NodeJS.ProcessEnv,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<{ url: string; token: string }> => {
  const url = (g.url ?? env.PRESSLUFT_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!z.url({ protocol: /^https?$/ }).safeParse(url).success) throw new CliError('usage', `PRESSLUFT_URL is not an http(s) URL: ${url}`, 2);
  if (g.tokenStdin) return { url, token: await readStdinToken(stdin) };
  if (g.tokenFile) return { url, token: await readGivenTokenFile(g.tokenFile) };
  const dataDirFile = join(resolve(env.PRESSLUFT_DATA_DIR || './.pressluft'), API_TOKEN_FILE);
  const token = env.PRESSLUFT_API_TOKEN || (await readTokenFile(dataDirFile));
  if (!token) throw new CliError('unauthorized', `no API token: set PRESSLUFT_API_TOKEN, pass --token-file FILE or --token-stdin, or run where ${dataDirFile} exists`, 2);
  return { url, token };
};
