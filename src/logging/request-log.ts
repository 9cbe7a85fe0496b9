import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Query parameters whose values never reach a log line, whatever a client puts there. */
const SECRET_PARAM = /token|secret|password|key|auth|credential/i;

/** The request path with the values of secret-looking query parameters replaced. */
export const loggableUrl = (url: string): string => {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of new Set(params.keys())) if (SECRET_PARAM.test(name)) params.set(name, '[redacted]');
  return `${url.slice(0, q)}?${params.toString()}`;
};

/**
 * What fastify's request log lines show of a request and a reply. An allowlist: no header is
 * logged, so Authorization and cookies cannot leak; the route is the pattern, not the raw URL.
 */
export const requestLogSerializers = {
  req: (req: FastifyRequest) => ({
    method: req.method,
    url: loggableUrl(req.url),
    route: req.routeOptions?.url,
    remoteAddress: req.ip,
  }),
  res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
};

/** A request id that is unique across restarts and instances, unlike fastify's counter. */
export const newRequestId = (): string => randomUUID();
