import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../api-deps.ts';
import { notFound } from '../api-error.ts';
import { createNode, reprovisionNode, trustHostKey } from '../../commands/provision-service.ts';
import {
  consistencyQuery,
  createNodeBody,
  historyQuery,
  hostKeyTrusted,
  idempotencyKeyHeader,
  jobAccepted,
  listNodesQuery,
  nodeCreated,
  nodeHistory,
  nodeList,
  nodeParams,
  nodeStateAt,
  nodeView,
  reprovisionBody,
  stateQuery,
  trustHostKeyBody,
} from '../api-schemas.ts';
import { toHistoryEntry } from '../history-entry.ts';
import { awaitPosition } from '../read-your-writes.ts';
import { errorResponses } from './error-responses.ts';

const tags = ['nodes'];

export const nodeRoutes =
  (deps: ApiDeps, o: { waitMs: number; now: () => string }): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/v1/nodes',
      {
        schema: {
          tags,
          summary: 'Create a node and request its first provision (202: the job is queued)',
          headers: z.looseObject({ 'idempotency-key': idempotencyKeyHeader.optional() }),
          body: createNodeBody,
          response: { 202: nodeCreated, ...errorResponses(409, 413, 415) },
        },
      },
      async (req, reply) => {
        const { expectPlaybook, ...body } = req.body;
        const created = await createNode(deps.repo, body, {
          idempotencyKey: req.headers['idempotency-key'],
          policy: deps.policy,
          now: o.now(),
          expectPlaybook,
          playbookDigest: deps.playbookBundle.digest,
        });
        return reply.code(202).send(created);
      },
    );

    app.post(
      '/v1/nodes/:nodeId/provision',
      {
        schema: {
          tags,
          summary: 'Re-provision an existing node; with expectPlaybook, only if the control plane runs that playbook bundle',
          params: nodeParams,
          body: reprovisionBody,
          response: { 202: jobAccepted, ...errorResponses(404, 409, 413, 415) },
        },
      },
      async (req, reply) => {
        const expectPlaybook = req.body?.expectPlaybook;
        return reply.code(202).send(await reprovisionNode(deps.repo, req.params.nodeId, { policy: deps.policy, now: o.now(), expectPlaybook, playbookDigest: deps.playbookBundle.digest }));
      },
    );

    app.post(
      '/v1/nodes/:nodeId/trust-host-key',
      {
        schema: {
          tags,
          summary: 'Trust the host key a failed run saw (ANSIBLE_HOST_KEY_MISMATCH); the next run expects it (200: recorded, nothing runs)',
          params: nodeParams,
          body: trustHostKeyBody,
          response: { 200: hostKeyTrusted, ...errorResponses(404, 409, 413, 415) },
        },
      },
      async (req) => trustHostKey(deps.repo, req.params.nodeId, { fingerprint: req.body.fingerprint, now: o.now() }),
    );

    app.get(
      '/v1/nodes',
      { schema: { tags, summary: 'List nodes from the read model, by id', querystring: listNodesQuery, response: { 200: nodeList, ...errorResponses() } } },
      async (req, reply) => {
        await awaitPosition(deps.projector, reply, req.query.minPosition, o.waitMs);
        const nodes = deps.queries.listNodes({ limit: req.query.limit, afterId: req.query.after });
        const last = nodes.at(-1);
        return { nodes, next: nodes.length === req.query.limit && last ? last.id : null };
      },
    );

    app.get(
      '/v1/nodes/:nodeId',
      { schema: { tags, summary: 'One node from the read model', params: nodeParams, querystring: consistencyQuery, response: { 200: nodeView, ...errorResponses(404) } } },
      async (req, reply) => {
        await awaitPosition(deps.projector, reply, req.query.minPosition, o.waitMs);
        const node = deps.queries.getNode(req.params.nodeId);
        if (!node) throw notFound(`node ${req.params.nodeId}`);
        return node;
      },
    );

    app.get(
      '/v1/nodes/:nodeId/events',
      {
        schema: {
          tags: ['audit'],
          summary: 'The audit history of a node, read from the event log (not the read model)',
          params: nodeParams,
          querystring: historyQuery,
          response: { 200: nodeHistory, ...errorResponses(404) },
        },
      },
      async (req) => {
        const { nodeId } = req.params;
        if ((await deps.store.version(nodeId)) === 0) throw notFound(`node ${nodeId}`);
        const events = await deps.repo.history(nodeId, { after: (req.query.from ?? 1) - 1 });
        return { nodeId, events: events.map(toHistoryEntry) };
      },
    );

    app.get(
      '/v1/nodes/:nodeId/state',
      {
        schema: {
          tags: ['audit'],
          summary: 'The node state folded from the log up to a position (default: now)',
          params: nodeParams,
          querystring: stateQuery,
          response: { 200: nodeStateAt, ...errorResponses(404) },
        },
      },
      async (req) => {
        const { nodeId } = req.params;
        const current = await deps.store.version(nodeId);
        const at = req.query.at ?? current;
        const { state } = await deps.repo.load(nodeId, Math.min(at, current));
        if (!state.nodeId) throw notFound(`node ${nodeId} at position ${at}`);
        return { nodeId, at, state: { ...state, nodeId: state.nodeId } };
      },
    );
  };
