import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** The console's own files: committed, served as they are, no build step (ADR 0050). */
const ASSETS_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'assets');

export const CONSOLE_PREFIX = '/console';
const ASSETS_PREFIX = `${CONSOLE_PREFIX}/assets/`;
/** One plain file name: no slash, no dot segment, no escape can widen the public path or reach another file. */
const ASSET_NAME = /^[a-z0-9-]+\.[a-z]+$/;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Only our own origin, and no inline code: every datum arrives through the authenticated API as
 * JSON and is written with textContent, so even a hostile event payload cannot run as script.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The console's pages and assets load before a token is typed: they hold no data, so they are
 * public like /healthz. Everything they show comes from the API with the bearer token.
 */
export const isConsolePath = (path: string): boolean =>
  path === CONSOLE_PREFIX || path === `${CONSOLE_PREFIX}/` || (path.startsWith(ASSETS_PREFIX) && ASSET_NAME.test(path.slice(ASSETS_PREFIX.length)));

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Names are an allow-list read once at start-up, so a request path can never reach another file. */
const loadAssets = async (): Promise<Map<string, Asset>> => {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(ASSETS_DIR)) {
    const type = CONTENT_TYPES[extname(name)];
    if (!type || !ASSET_NAME.test(name)) continue;
    const body = await readFile(join(ASSETS_DIR, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` });
  }
  return assets;
};

const send = (req: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply => {
  // no-cache means "revalidate every time": a new release is never hidden behind a stale script.
  void reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .header('etag', asset.etag);
  if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.type(asset.type).send(asset.body);
};

/** Serves the web console at /console (index.html) and /console/assets/<name>. */
export const consoleRoutes: FastifyPluginAsync = async (app) => {
  const assets = await loadAssets();
  const index = assets.get('index.html');
  if (!index) throw new Error(`console assets are missing index.html in ${ASSETS_DIR}`);
  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => send(req, reply, index);
  app.get(CONSOLE_PREFIX, { schema: { hide: true } }, page);
  app.get(`${CONSOLE_PREFIX}/`, { schema: { hide: true } }, page);
  app.get<{ Params: { name: string } }>(`${ASSETS_PREFIX}:name`, { schema: { hide: true } }, async (req, reply) => {
    const asset = req.params.name === 'index.html' ? undefined : assets.get(req.params.name);
    if (!asset) return reply.callNotFound();
    return send(req, reply, asset);
  });
};
