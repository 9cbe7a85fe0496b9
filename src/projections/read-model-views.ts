import { z } from 'zod';

/**
 * The node and job views, each spelled once: per view field its SQLite column, the column's
 * declaration and the zod schema of its value. The tables, the upserts, the SELECT lists and
 * the API's response schemas are all derived from these, so a column cannot drift between them.
 */
interface Column {
  column: string;
  sql: string;
  schema: z.ZodType;
}
const col = <S extends z.ZodType>(column: string, sql: string, schema: S) => ({ column, sql, schema });

const text = z.string();
const nullableText = z.string().nullable();
const int = z.number().int();

export const nodeColumns = {
  id: col('id', 'TEXT PRIMARY KEY', text),
  name: col('name', 'TEXT NOT NULL', text),
  status: col('status', 'TEXT NOT NULL', text),
  provider: col('provider', 'TEXT NOT NULL', text),
  serverType: col('server_type', 'TEXT NOT NULL', text),
  location: col('location', 'TEXT NOT NULL', text),
  image: col('image', 'TEXT NOT NULL', text),
  sshUser: col('ssh_user', 'TEXT NOT NULL', text),
  sshPort: col('ssh_port', 'INTEGER NOT NULL', int),
  providerServerId: col('provider_server_id', 'TEXT', nullableText),
  ipv4: col('ipv4', 'TEXT', nullableText),
  // Exposed: the provider assigns it with the server, the audit state shows it, and hiding it helped no one.
  ipv6: col('ipv6', 'TEXT', nullableText),
  currentJobId: col('current_job_id', 'TEXT', nullableText),
  lastJobId: col('last_job_id', 'TEXT', nullableText),
  updatedAt: col('updated_at', 'TEXT NOT NULL', text),
  position: col('last_position', 'INTEGER NOT NULL', int),
  /** The host key every run trusts (ssh-keygen's SHA256: form), and whether it came with the server or an operator trusted it. */
  hostKeyFingerprint: col('host_key_fingerprint', 'TEXT', nullableText),
  hostKeySource: col('host_key_source', 'TEXT', z.enum(['created', 'trusted']).nullable()),
  /** The key a failed run saw instead, until it is trusted (TrustHostKey). */
  presentedHostKeyFingerprint: col('presented_host_key_fingerprint', 'TEXT', nullableText),
} satisfies Record<string, Column>;

export const jobColumns = {
  id: col('id', 'TEXT PRIMARY KEY', text),
  nodeId: col('node_id', 'TEXT NOT NULL', text),
  kind: col('kind', 'TEXT NOT NULL', z.literal('node_provision')),
  status: col('status', 'TEXT NOT NULL', text),
  step: col('step', 'TEXT NOT NULL', text),
  attempt: col('attempt', 'INTEGER NOT NULL', int),
  maxAttempts: col('max_attempts', 'INTEGER NOT NULL', int),
  errorCode: col('error_code', 'TEXT', nullableText),
  errorMessage: col('error_message', 'TEXT', nullableText),
  outputTail: col('output_tail', 'TEXT', nullableText),
  runAfter: col('run_after', 'TEXT', nullableText),
  requestedAt: col('requested_at', 'TEXT NOT NULL', text),
  startedAt: col('started_at', 'TEXT', nullableText),
  finishedAt: col('finished_at', 'TEXT', nullableText),
  updatedAt: col('updated_at', 'TEXT NOT NULL', text),
  position: col('last_position', 'INTEGER NOT NULL', int),
  /** What the job's last Ansible run executed (bundle digest, product version) and the host key it trusted. */
  playbookDigest: col('playbook_digest', 'TEXT', nullableText),
  productVersion: col('product_version', 'TEXT', nullableText),
  hostKeyFingerprint: col('host_key_fingerprint', 'TEXT', nullableText),
  /** The last run's host key mismatch: the fingerprint it expected and the one the server presented (null when none was seen). */
  hostKeyMismatchExpected: col('host_key_mismatch_expected', 'TEXT', nullableText),
  hostKeyMismatchPresented: col('host_key_mismatch_presented', 'TEXT', nullableText),
} satisfies Record<string, Column>;

type Columns = Record<string, Column>;
type SchemaOf<C extends Columns> = z.ZodObject<{ [K in keyof C]: C[K]['schema'] }>;

const schemaOf = <C extends Columns>(cols: C): SchemaOf<C> =>
  z.object(Object.fromEntries(Object.entries(cols).map(([k, c]) => [k, c.schema]))) as unknown as SchemaOf<C>;

/** The columns of a CREATE TABLE body. */
export const columnDeclarations = (cols: Columns): string => Object.values(cols).map((c) => `${c.column} ${c.sql}`).join(',\n      ');

/** A SELECT list that returns rows already in view shape (`server_type AS "serverType"`). */
export const selectList = (cols: Columns, table: string): string =>
  Object.entries(cols).map(([k, c]) => `${table}.${c.column} AS "${k}"`).join(', ');

/** An upsert by primary key, with named parameters spelled as the view's field names. */
export const upsertSql = (cols: Columns, table: string): string => {
  const entries = Object.entries(cols);
  const updates = entries.filter(([k]) => k !== 'id').map(([, c]) => `${c.column} = excluded.${c.column}`);
  return `INSERT INTO ${table} (${entries.map(([, c]) => c.column).join(', ')}) VALUES (${entries.map(([k]) => `@${k}`).join(', ')})
    ON CONFLICT(id) DO UPDATE SET ${updates.join(', ')}`;
};

export const nodeRowSchema = schemaOf(nodeColumns);
export const jobViewSchema = schemaOf(jobColumns);
export type NodeRow = z.infer<typeof nodeRowSchema>;
export type JobView = z.infer<typeof jobViewSchema>;

/**
 * How the projection of one node stands. A node whose log holds a message that does not decode is
 * `broken`: its rows stay as they were before that message, and its later messages are counted, not folded.
 */
export const nodeProjectionSchema = z.object({
  broken: z.boolean(),
  /** The position of the message that did not decode. */
  position: int.nullable(),
  /** Why it did not decode (EVENT_INVALID). */
  reason: nullableText,
  /** When JetStream stored that message. */
  at: nullableText,
  /** Later messages of this node that were not folded. */
  skipped: int,
});
export type NodeProjectionHealth = z.infer<typeof nodeProjectionSchema>;
export const HEALTHY: NodeProjectionHealth = { broken: false, position: null, reason: null, at: null, skipped: 0 };

export const nodeViewSchema = nodeRowSchema.extend({ projection: nodeProjectionSchema });
export type NodeView = z.infer<typeof nodeViewSchema>;
