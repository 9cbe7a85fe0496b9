import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { createServerRequestSchema, createSshKeyRequestSchema, type ErrorEnvelope, type Pagination } from '../../providers/hetzner/hetzner-schemas.ts';
import { LabelSelectorSyntaxError, parseLabelSelector, type SelectorTerm } from './label-selector.ts';
import type { FaultEffect, Operation } from './faults.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { SimApiError, type SimulatorState } from './simulator-state.ts';

export interface SimulatorAppDeps {
  state: SimulatorState;
  token: string;
  rateLimiter: RateLimiter;
  now: () => number;
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const pageQuery = {
  page: z.coerce.number().int().min(1).default(1),
  // Hetzner caps per_page at 50; asking for more is a client bug we want to see.
  per_page: z.coerce.number().int().min(1).max(50).default(25),
};
const selectorQuery = { label_selector: z.string().optional() };
const sshKeyListQuery = z.object({ ...pageQuery, ...selectorQuery, name: z.string().optional(), fingerprint: z.string().optional() });
const serverListQuery = z.object({ ...pageQuery, ...selectorQuery, name: z.string().optional() });
const actionListQuery = z.object({
  ...pageQuery,
  id: z.union([z.coerce.number().int().positive(), z.array(z.coerce.number().int().positive())]).transform((v) => (Array.isArray(v) ? v : [v])),
});
const pageOnlyQuery = z.object(pageQuery);
const idParams = z.object({ id: z.coerce.number().int().positive() });

const parse = <S extends z.ZodType>(schema: S, input: unknown): z.infer<S> => {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const fields = r.error.issues.map((i) => ({ name: i.path.join('.'), messages: [i.message] }));
  throw new SimApiError(422, 'invalid_input', `invalid input: ${fields.map((f) => f.name || 'body').join(', ')}`, { fields });
};

const selector = (raw: string | undefined): SelectorTerm[] => {
  try {
    return parseLabelSelector(raw ?? '');
  } catch (e) {
    if (e instanceof LabelSelectorSyntaxError) throw new SimApiError(422, 'invalid_input', e.message, { fields: [{ name: 'label_selector' }] });
    throw e;
  }
};

const envelope = (code: string, message: string, details?: unknown): ErrorEnvelope => ({ error: { code, message, details: details ?? {} } });

/** One page plus meta.pagination and a Link header, as Hetzner paginates. */
const paginate = <T>(req: FastifyRequest, items: T[], page: number, perPage: number): { items: T[]; pagination: Pagination; link: string } => {
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const pagination: Pagination = {
    page,
    per_page: perPage,
    previous_page: page > 1 ? page - 1 : null,
    next_page: page < last ? page + 1 : null,
    last_page: last,
    total_entries: items.length,
  };
  const url = new URL(req.url, 'http://sim.invalid');
  const linkTo = (p: number, rel: string) => {
    url.searchParams.set('page', String(p));
    url.searchParams.set('per_page', String(perPage));
    return `<${url.pathname}${url.search}>; rel="${rel}"`;
  };
  const links = [
    ...(pagination.previous_page ? [linkTo(pagination.previous_page, 'prev')] : []),
    ...(pagination.next_page ? [linkTo(pagination.next_page, 'next')] : []),
    linkTo(last, 'last'),
  ];
  return { items: items.slice((page - 1) * perPage, page * perPage), pagination, link: links.join(', ') };
};

const list = <T>(req: FastifyRequest, key: string, items: T[], q: { page: number; per_page: number }): Answer => {
  const p = paginate(req, items, q.page, q.per_page);
  return { status: 200, body: { [key]: p.items, meta: { pagination: p.pagination } }, headers: { link: p.link } };
};

/** Builds the fastify app for `/v1/*`; admin routes are added by admin-routes.ts. */
export const buildSimulatorApp = (deps: SimulatorAppDeps): FastifyInstance => {
  const { state } = deps;
  const app = Fastify({ logger: false });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-correlation-id', randomBytes(8).toString('hex'));
    if (!req.url.startsWith('/v1/')) return;
    if (req.headers.authorization !== `Bearer ${deps.token}`) {
      state.countRejected('unauthorized');
      return reply.code(401).send(envelope('unauthorized', 'unable to authenticate'));
    }
    const verdict = deps.rateLimiter.take(deps.now());
    reply.headers(verdict.headers);
    if (!verdict.allowed) {
      state.countRejected('rateLimited');
      return reply.code(429).send(envelope('rate_limit_exceeded', 'limit of requests per hour reached'));
    }
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(envelope('not_found', 'no such route')));
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    // Malformed JSON and similar: Hetzner answers json_error / invalid_input in its envelope.
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(400).send(envelope('json_error', err.message));
    return reply.code(500).send(envelope('server_error', 'simulator error'));
  });

  const applyEffect = async (effect: FaultEffect, req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    switch (effect.type) {
      case 'delay':
        await sleep(effect.ms);
        return false;
      case 'drop':
        // No answer at all: the client cannot know whether the call took effect.
        reply.hijack();
        req.raw.socket.destroy();
        return true;
      case 'error':
        await reply.code(effect.status).send(envelope(effect.code, effect.message, effect.details));
        return true;
    }
  };

  /** Counts the call, applies a queued fault before or after the effect, and answers. */
  const serve = (op: Operation, perform: (req: FastifyRequest) => Answer) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      state.count(op);
      const fault = state.faults.take(op);
      if (fault && !fault.applyFirst && (await applyEffect(fault.effect, req, reply))) return;
      let answer: Answer;
      try {
        answer = perform(req);
      } catch (e) {
        if (!(e instanceof SimApiError)) throw e;
        answer = { status: e.status, body: envelope(e.code, e.message, e.details) };
      }
      if (fault && fault.applyFirst && (await applyEffect(fault.effect, req, reply))) return;
      await reply.code(answer.status).headers(answer.headers ?? {}).send(answer.body);
    };

  app.get('/v1/ssh_keys', serve('list_ssh_keys', (req) => {
    const q = parse(sshKeyListQuery, req.query);
    return list(req, 'ssh_keys', state.listSshKeys({ name: q.name, fingerprint: q.fingerprint, selector: selector(q.label_selector) }), q);
  }));
  app.post('/v1/ssh_keys', serve('create_ssh_key', (req) =>
    ({ status: 201, body: { ssh_key: state.createSshKey(parse(createSshKeyRequestSchema, req.body)) } })));

  app.delete('/v1/ssh_keys/:id', serve('delete_ssh_key', (req) => {
    state.deleteSshKey(parse(idParams, req.params).id);
    return { status: 204, body: undefined };
  }));

  app.get('/v1/servers', serve('list_servers', (req) => {
    const q = parse(serverListQuery, req.query);
    return list(req, 'servers', state.listServers({ name: q.name, selector: selector(q.label_selector) }), q);
  }));
  app.post('/v1/servers', serve('create_server', (req) =>
    ({ status: 201, body: state.createServer(parse(createServerRequestSchema, req.body)) })));
  app.get('/v1/servers/:id', serve('get_server', (req) =>
    ({ status: 200, body: { server: state.getServer(parse(idParams, req.params).id) } })));
  app.delete('/v1/servers/:id', serve('delete_server', (req) =>
    ({ status: 200, body: { action: state.deleteServer(parse(idParams, req.params).id) } })));
  app.get('/v1/servers/:id/actions', serve('list_server_actions', (req) => {
    const { id } = parse(idParams, req.params);
    state.getServer(id);
    return list(req, 'actions', state.serverActions(id), parse(pageOnlyQuery, req.query));
  }));

  // Listing every action of a project was removed (2025-01-30): `id` is required.
  app.get('/v1/actions', serve('list_actions', (req) => {
    const q = parse(actionListQuery, req.query);
    return list(req, 'actions', state.getActions(q.id), q);
  }));
  app.get('/v1/actions/:id', serve('get_action', (req) =>
    ({ status: 200, body: { action: state.getAction(parse(idParams, req.params).id) } })));

  return app;
};
