import { z } from 'zod';
import { idSchema } from '../events/ids.ts';
import { jobViewSchema, nodeViewSchema } from '../projections/read-model-views.ts';
import { hostKeyFingerprintSchema, hostnameSchema, playbookDigestSchema, portSchema, posixUserSchema } from '../events/node-events.ts';

/**
 * The HTTP contract as zod schemas: request validation and openapi.json come from the same
 * definitions. Objects are strict: an unknown field is a 400, never silently dropped.
 */

const slug = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be lowercase letters, digits, dots, hyphens and underscores');

export const DEFAULT_IMAGE = 'ubuntu-24.04';

export const createNodeBody = z.strictObject({
  // The same rules the events enforce (src/events/node-events.ts): one definition for the API and the log.
  name: hostnameSchema,
  serverType: slug,
  location: slug,
  image: slug.default(DEFAULT_IMAGE),
  sshUser: posixUserSchema.default('root'),
  sshPort: portSchema.default(22),
  /** Refuse (409 playbook_digest_mismatch) unless the control plane's playbook bundle has this digest (GET /v1/version). */
  expectPlaybook: playbookDigestSchema.optional(),
});
export type CreateNodeBody = z.infer<typeof createNodeBody>;

/** Fastify hands a missing body over as null; both mean "no requirement". */
export const reprovisionBody = z.strictObject({ expectPlaybook: playbookDigestSchema.optional() }).nullish();
export const trustHostKeyBody = z.strictObject({ fingerprint: hostKeyFingerprintSchema });

/** Fastify hands a missing body over as null; both mean "no options". */
export const cancelJobBody = z.strictObject({ reason: z.string().max(500).optional() }).nullish();

export const nodeParams = z.strictObject({ nodeId: idSchema });
export const jobParams = z.strictObject({ jobId: idSchema });

const position = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Read-your-writes: wait until the read model has projected this position. */
export const consistencyQuery = z.strictObject({ minPosition: position.optional() });
export const listNodesQuery = z.strictObject({
  minPosition: position.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: idSchema.optional(),
});
export const historyQuery = z.strictObject({ from: position.min(1).optional() });
export const stateQuery = z.strictObject({ at: position.min(1).optional() });
export const streamQuery = z.strictObject({ minPosition: position.optional() });
export const rebuildBody = z.strictObject({ name: z.enum(['nodes']).optional() }).nullish();

export const idempotencyKeyHeader = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

const iso = z.string();
const nullableString = z.string().nullable();

/**
 * The read-model views, derived from the one column list in src/projections/read-model-views.ts;
 * they carry the host-key fields of the node and what each job's last run executed.
 */
export const nodeView = nodeViewSchema;
export const jobView = jobViewSchema;

export const nodeCreated = z.object({ nodeId: z.string(), jobId: z.string(), position: z.number().int() });
export const jobAccepted = z.object({ jobId: z.string(), position: z.number().int() });
export const hostKeyTrusted = z.object({ nodeId: z.string(), fingerprint: z.string(), position: z.number().int() });
export const versionBody = z.object({
  /** package.json "version" of the running control plane. */
  version: z.string(),
  /** SHA-256 of its ansible/ tree: the value `expectPlaybook` must carry. */
  playbookDigest: z.string(),
});
export const nodeList = z.object({ nodes: z.array(nodeView), next: nullableString });

export const historyEntry = z.object({
  position: z.number().int(),
  eventId: z.string(),
  occurredAt: iso,
  type: z.string(),
  version: z.number().int(),
  data: z.record(z.string(), z.unknown()),
  actor: z.string(),
  correlationId: z.string(),
  causationId: z.string(),
});
export const nodeHistory = z.object({ nodeId: z.string(), events: z.array(historyEntry) });

export const eventParams = z.strictObject({ position: position.min(1) });
/** One stored message as an operator sees it: decoded when it decodes, else its redacted text. */
export const storedMessage = z.object({
  position: z.number().int(),
  subject: z.string(),
  nodeId: z.string(),
  storedAt: iso,
  /** The message headers (Nats-Msg-Id, Nats-Expected-Last-Subject-Sequence, …), values redacted like the text. */
  headers: z.record(z.string(), z.array(z.string())),
  decodes: z.boolean(),
  /** The events of the decision when it decodes, else null. */
  events: z.array(historyEntry).nullable(),
  /** When it does not decode: why (EVENT_INVALID), and its text, redacted and cut to 4096 characters. */
  invalid: z.object({ reason: z.string(), text: z.string(), bytes: z.number().int(), truncated: z.boolean() }).nullable(),
});
export type StoredMessageView = z.infer<typeof storedMessage>;
export type HistoryEntry = z.infer<typeof historyEntry>;

const recap = z.object({
  ok: z.number().int(),
  changed: z.number().int(),
  failures: z.number().int(),
  unreachable: z.number().int(),
  skipped: z.number().int(),
  rescued: z.number().int(),
  ignored: z.number().int(),
});
const jobPolicy = z.object({
  maxAttempts: z.number().int(),
  backoffMs: z.array(z.number().int()),
  jobTimeoutMs: z.number().int(),
  ansibleTimeoutMs: z.number().int(),
  actionTimeoutMs: z.number().int(),
});
const attemptProgress = z.object({
  sshKey: z.object({ keyId: z.string(), fingerprint: z.string() }).nullable(),
  serverCreateRequested: z.object({ serverName: z.string(), at: iso }).nullable(),
  server: z.object({ serverId: z.string(), actionIds: z.array(z.string()), adopted: z.boolean(), at: iso }).nullable(),
  actions: z.record(z.string(), z.object({ status: z.enum(['running', 'success', 'error']), progress: z.number(), errorCode: nullableString })),
  ready: z.object({ ipv4: nullableString, ipv6: nullableString }).nullable(),
  ansibleStartedAt: nullableString,
});
const jobState = z.object({
  jobId: z.string(),
  status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
  attempt: z.number().int(),
  policy: jobPolicy,
  requestedAt: iso,
  startedAt: nullableString,
  attemptStartedAt: nullableString,
  finishedAt: nullableString,
  runAfter: nullableString,
  errorCode: nullableString,
  errorMessage: nullableString,
  cancelRequested: z.boolean(),
  lastRecap: recap.nullable(),
  progress: attemptProgress,
  expectPlaybook: z.string().optional(),
  playbookDigest: nullableString.optional(),
  productVersion: nullableString.optional(),
  hostKeyFingerprint: nullableString.optional(),
  hostKeyMismatch: z.object({ expectedFingerprint: z.string(), presentedFingerprint: nullableString, presentedPublicKey: nullableString }).nullable().optional(),
});
const hostKey = z.object({ publicKey: z.string(), fingerprint: z.string() });

/** The node aggregate folded from the log (events/node-state.ts). */
export const nodeStateAt = z.object({
  nodeId: z.string(),
  at: z.number().int(),
  state: z.object({
    nodeId: z.string(),
    spec: z
      .object({ name: z.string(), provider: z.literal('hetzner'), serverType: z.string(), location: z.string(), image: z.string(), sshUser: z.string(), sshPort: z.number().int() })
      .nullable(),
    status: z.enum(['pending', 'acquiring', 'provisioning', 'ready', 'degraded', 'failed']).nullable(),
    providerServerId: nullableString,
    ipv4: nullableString,
    ipv6: nullableString,
    currentJobId: nullableString,
    lastJobId: nullableString,
    jobs: z.record(z.string(), jobState),
    hostKey: hostKey.extend({ source: z.enum(['created', 'trusted']) }).nullable().optional(),
    presentedHostKey: hostKey.extend({ jobId: z.string() }).nullable().optional(),
  }),
});

export const brokenNode = z.object({ nodeId: z.string(), position: z.number().int(), reason: z.string(), at: iso, skipped: z.number().int() });
export const projectionStatus = z.object({
  name: z.literal('nodes'),
  checkpoint: z.number().int(),
  lastPosition: z.number().int(),
  lag: z.number().int(),
  rebuilding: z.boolean(),
  /** The projector loop is dead (a bug); null while it runs. */
  error: nullableString,
  /** A batch is being retried after a transient SQLite error (a full disk, a lock). */
  retrying: z.object({ code: z.string(), attempts: z.number().int(), since: iso }).nullable(),
  /** Nodes not projected because a message of theirs does not decode; `brokenNodes` lists the first 100. */
  brokenNodeCount: z.number().int(),
  brokenNodes: z.array(brokenNode),
});
export const projectionList = z.object({ projections: z.array(projectionStatus) });
export const rebuildReport = z.object({
  name: z.literal('nodes'),
  replayed: z.number().int(),
  lagBefore: z.number().int(),
  lagAfter: z.number().int(),
  durationMs: z.number().int(),
});

export const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});

export const healthBody = z.object({ status: z.string() });
export const readyBody = z.object({
  /** `degraded`: serving, but some nodes' projections are broken or the read model is retrying a transient error. */
  status: z.enum(['ready', 'degraded']),
  checks: z.object({
    nats: z.literal('ok'),
    projector: z.object({ checkpoint: z.number().int(), lag: z.number().int(), brokenNodes: z.number().int(), retrying: z.string().nullable() }),
  }),
});

/** Ansible per-task progress as the saga publishes it on `<prefix>.progress.<jobId>`. */
export const taskProgress = z.object({
  index: z.number().int(),
  total: z.number().int(),
  task: z.string(),
  host: z.string(),
  status: z.string(),
  jobId: z.string(),
  attempt: z.number().int(),
  handler: z.boolean().optional(),
});
export type TaskProgressMessage = z.infer<typeof taskProgress>;
