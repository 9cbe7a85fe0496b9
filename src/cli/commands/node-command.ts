import { z } from 'zod';
import { createNodeBody, reprovisionBody, trustHostKeyBody, type HistoryEntry } from '../../api/api-schemas.ts';
import type { NodeView } from '../../projections/read-model-queries.ts';
import { connectApi } from '../api-client.ts';
import { usageError } from '../cli-error.ts';
import { parseCommandArgs } from '../cli-options.ts';
import { timeline } from '../event-description.ts';
import { createOutput, table, type Streams } from '../output.ts';
import { followJob } from './follow-job.ts';

export const NODE_USAGE = `usage: pressluft node create --name NAME --type SERVER_TYPE --location LOCATION
                            [--image IMAGE] [--ssh-user USER] [--ssh-port PORT] [--idempotency-key KEY]
                            [--expect-playbook DIGEST] [--wait]
       pressluft node list [--limit N] [--min-position P]
       pressluft node get NODE_ID [--min-position P]
       pressluft node provision NODE_ID [--expect-playbook DIGEST] [--wait]
       pressluft node trust-host-key NODE_ID --fingerprint SHA256:…
       pressluft node history NODE_ID [--from P]
       pressluft node state NODE_ID [--at P]
common: [--url URL] [--token-file FILE | --token-stdin] [--json]`;

const position = z.coerce.number().int().min(0);
const oneId = z.tuple([z.string()]);

const createArgs = z.object({
  _: z.tuple([]),
  name: z.string(),
  type: z.string(),
  location: z.string(),
  image: z.string().optional(),
  'ssh-user': z.string().optional(),
  'ssh-port': z.coerce.number().optional(),
  'idempotency-key': z.string().min(1).optional(),
  'expect-playbook': z.string().optional(),
  wait: z.boolean().default(false),
});

/** Validated with the API's own schema, so a mistyped digest or fingerprint is refused before any request. */
const apiBody = <S extends z.ZodType>(schema: S, value: unknown): z.infer<S> => {
  const body = schema.safeParse(value);
  if (!body.success) throw usageError(z.prettifyError(body.error), NODE_USAGE);
  return body.data;
};

const nodeRows = (nodes: readonly NodeView[]): string =>
  nodes.length === 0
    ? 'no nodes'
    : table([['ID', 'NAME', 'STATUS', 'IPV4', 'CURRENT JOB', 'LAST JOB'], ...nodes.map((n) => [n.id, n.name, n.status, n.ipv4 ?? '-', n.currentJobId ?? '-', n.lastJobId ?? '-'])]);

const query = (params: Record<string, string | number | undefined>): string => {
  const q = new URLSearchParams(Object.entries(params).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
  return q.size > 0 ? `?${q}` : '';
};

export const runNodeCommand = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': {
      const { global, values: v } = parseCommandArgs(rest, CREATE_OPTIONS, createArgs, NODE_USAGE);
      // The API's own schema: a bad name is refused here, before any request.
      const body = apiBody(createNodeBody, { name: v.name, serverType: v.type, location: v.location, image: v.image, sshUser: v['ssh-user'], sshPort: v['ssh-port'], expectPlaybook: v['expect-playbook'] });
      const out = createOutput(streams, global.json);
      const api = await connectApi(global, env);
      const headers: Record<string, string> = v['idempotency-key'] ? { 'idempotency-key': v['idempotency-key'] } : {};
      const created = await api.post<{ nodeId: string; jobId: string; position: number }>('/v1/nodes', body, headers);
      if (!v.wait) {
        out.result(created, () => `node ${created.nodeId} created; job ${created.jobId} queued (position ${created.position})`);
        return 0;
      }
      if (!out.json) out.line(`node ${created.nodeId} created; following job ${created.jobId}`);
      return followJob(api, out, created.jobId, created.position);
    }
    case 'provision': {
      const opts = { wait: { type: 'boolean' }, 'expect-playbook': { type: 'string' } } as const;
      const { global, values: v } = parseCommandArgs(rest, opts, z.object({ _: oneId, wait: z.boolean().default(false), 'expect-playbook': z.string().optional() }), NODE_USAGE);
      const body = v['expect-playbook'] === undefined ? undefined : apiBody(reprovisionBody, { expectPlaybook: v['expect-playbook'] });
      const out = createOutput(streams, global.json);
      const api = await connectApi(global, env);
      const accepted = await api.post<{ jobId: string; position: number }>(`/v1/nodes/${encodeURIComponent(v._[0])}/provision`, body);
      if (!v.wait) {
        out.result(accepted, () => `job ${accepted.jobId} queued (position ${accepted.position})`);
        return 0;
      }
      return followJob(api, out, accepted.jobId, accepted.position);
    }
    case 'trust-host-key': {
      const { global, values: v } = parseCommandArgs(rest, { fingerprint: { type: 'string' } }, z.object({ _: oneId, fingerprint: z.string({ error: '--fingerprint SHA256:… is required' }) }), NODE_USAGE);
      const body = apiBody(trustHostKeyBody, { fingerprint: v.fingerprint });
      const res = await (await connectApi(global, env)).post<{ nodeId: string; fingerprint: string; position: number }>(`/v1/nodes/${encodeURIComponent(v._[0])}/trust-host-key`, body);
      createOutput(streams, global.json).result(res, () => `host key ${res.fingerprint} trusted for node ${res.nodeId} (position ${res.position}); the next run expects it`);
      return 0;
    }
    case 'list': {
      const opts = { limit: { type: 'string' }, 'min-position': { type: 'string' } } as const;
      const { global, values: v } = parseCommandArgs(rest, opts, z.object({ _: z.tuple([]), limit: z.coerce.number().int().min(1).max(500).optional(), 'min-position': position.optional() }), NODE_USAGE);
      const res = await (await connectApi(global, env)).get<{ nodes: NodeView[] }>(`/v1/nodes${query({ limit: v.limit, minPosition: v['min-position'] })}`);
      createOutput(streams, global.json).result(res, () => nodeRows(res.nodes));
      return 0;
    }
    case 'get': {
      const { global, values: v } = parseCommandArgs(rest, { 'min-position': { type: 'string' } }, z.object({ _: oneId, 'min-position': position.optional() }), NODE_USAGE);
      const node = await (await connectApi(global, env)).get<NodeView>(`/v1/nodes/${encodeURIComponent(v._[0])}${query({ minPosition: v['min-position'] })}`);
      createOutput(streams, global.json).result(node, () =>
        table(Object.entries(node).map(([k, val]) => [`${k}:`, val === null ? '-' : String(val)])),
      );
      return 0;
    }
    case 'history': {
      const { global, values: v } = parseCommandArgs(rest, { from: { type: 'string' } }, z.object({ _: oneId, from: position.min(1).optional() }), NODE_USAGE);
      const res = await (await connectApi(global, env)).get<{ nodeId: string; events: HistoryEntry[] }>(`/v1/nodes/${encodeURIComponent(v._[0])}/events${query({ from: v.from })}`);
      createOutput(streams, global.json).result(res, () => `history of node ${res.nodeId} (${res.events.length} events)\n${timeline(res.events)}`);
      return 0;
    }
    case 'state': {
      const { global, values: v } = parseCommandArgs(rest, { at: { type: 'string' } }, z.object({ _: oneId, at: position.min(1).optional() }), NODE_USAGE);
      const res = await (await connectApi(global, env)).get<unknown>(`/v1/nodes/${encodeURIComponent(v._[0])}/state${query({ at: v.at })}`);
      // The folded state is nested; JSON is its readable form too.
      createOutput(streams, global.json).result(res, () => JSON.stringify(res, null, 2));
      return 0;
    }
    default:
      throw usageError(sub ? `unknown node command: ${sub}` : 'missing node command', NODE_USAGE);
  }
};

const CREATE_OPTIONS = {
  name: { type: 'string' },
  type: { type: 'string' },
  location: { type: 'string' },
  image: { type: 'string' },
  'ssh-user': { type: 'string' },
  'ssh-port': { type: 'string' },
  'idempotency-key': { type: 'string' },
  'expect-playbook': { type: 'string' },
  wait: { type: 'boolean' },
} as const;
