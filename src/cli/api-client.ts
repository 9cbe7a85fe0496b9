import { z } from 'zod';
import { CliError } from './cli-error.ts';
import { resolveConnection, type GlobalOptions } from './cli-options.ts';
import { readSse, type SseEvent } from './sse-reader.ts';

const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) });

/** A thin client of the HTTP API: JSON in, JSON out, API errors as CliError with the API's stable code. */
export class ApiClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>('POST', path, body, headers);
  }

  /** Opens an SSE response and yields its events until the server ends it. */
  async *stream(method: 'GET' | 'POST', path: string, body?: unknown): AsyncGenerator<SseEvent> {
    const res = await this.send(method, path, body, { accept: 'text/event-stream' });
    if (!res.body) return;
    yield* readSse(res.body);
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.send(method, path, body, headers);
    return (await res.json()) as T;
  }

  private async send(method: 'GET' | 'POST', path: string, body: unknown, headers: Record<string, string>): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new CliError('unreachable', `cannot reach the Pressluft API at ${this.url} (is \`pressluft serve\` running? set --url or PRESSLUFT_URL)`);
    }
    if (res.ok) return res;
    const parsed = errorBody.safeParse(await res.json().catch(() => null));
    if (!parsed.success) throw new CliError('internal', `the API answered ${res.status} without an error body`);
    const { code, message, details } = parsed.data.error;
    throw new CliError(code, message, 1, details);
  }
}

/** The API client for the --url and --token-file/--token-stdin flags, the environment, or the data dir's token file. */
export const connectApi = async (g: Pick<GlobalOptions, 'url' | 'tokenFile' | 'tokenStdin'>, env: NodeJS.ProcessEnv): Promise<ApiClient> => {
  const c = await resolveConnection(g, env);
  return new ApiClient(c.url, c.token);
};
