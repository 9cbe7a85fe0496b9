import { z } from 'zod';
import { sha256Fingerprint } from '../ssh-keys/fingerprint.ts';
import { idSchema } from './ids.ts';

/**
 * Every event of the node aggregate, as zod schemas. The node aggregate holds its jobs,
 * so every job event names its jobId and the attempt it belongs to.
 * Bump `version` and add an upcaster in event-codec.ts when a payload changes shape.
 */
const iso = z.string().datetime({ offset: true });
const jobRef = { jobId: idSchema, attempt: z.number().int().min(1) };
const recapSchema = z.object({
  ok: z.number().int().min(0),
  changed: z.number().int().min(0),
  failures: z.number().int().min(0),
  unreachable: z.number().int().min(0),
  skipped: z.number().int().min(0),
  rescued: z.number().int().min(0),
  ignored: z.number().int().min(0),
});
/** The last 10 KB of Ansible output, already redacted by the runner. */
const outputTail = z.string().max(10 * 1024);

/** The retry and timeout policy is fixed when the job is requested, so replays are deterministic. */
export const jobPolicySchema = z.object({
  maxAttempts: z.number().int().min(1).max(10),
  backoffMs: z.array(z.number().int().min(0)).min(1),
  jobTimeoutMs: z.number().int().min(1),
  ansibleTimeoutMs: z.number().int().min(1),
  actionTimeoutMs: z.number().int().min(1),
});
export type JobPolicy = z.infer<typeof jobPolicySchema>;

// The API's rules again, so an event appended by anything but the API (a forged or buggy write)
// cannot carry a name that a shell, an INI line or a Jinja template would read as code.

/** RFC 1123 host name (one or more labels), lowercase, at most 63 characters: it is the provider's server name too. */
export const hostnameSchema = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be an RFC 1123 host name: lowercase letters, digits, hyphens and dots');
/** POSIX portable user name, as useradd accepts it. */
export const posixUserSchema = z.string().max(32).regex(/^[a-z_][a-z0-9_-]*$/, 'must be a POSIX user name');
export const portSchema = z.number().int().min(1).max(65535);

export const nodeSpecSchema = z.object({
  name: hostnameSchema,
  provider: z.literal('hetzner'),
  serverType: z.string().min(1).max(64),
  location: z.string().min(1).max(64),
  image: z.string().min(1).max(64),
  sshUser: posixUserSchema,
  sshPort: portSchema,
});
export type NodeSpec = z.infer<typeof nodeSpecSchema>;

/**
 * An SSH host key as a known_hosts line carries it: ed25519 only, no comment. Strict, because the
 * runner writes it into known_hosts: a newline here would add a line of the event writer's choosing.
 */
export const hostPublicKeySchema = z.string().max(200).regex(/^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/, 'must be "ssh-ed25519 <base64>" without a comment');
/** As `ssh-keygen -l` prints it: SHA256 of the key blob, base64 without padding. */
export const hostKeyFingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be "SHA256:" and 43 base64 characters, as ssh-keygen -l prints it');
const fingerprintOrNull = (publicKey: string): string | null => {
  try {
    return sha256Fingerprint(publicKey);
  } catch {
    return null;
  }
};
/** The fingerprint must be the key's: the runner trusts the key, while people compare fingerprints. */
export const hostKeySchema = z
  .object({ publicKey: hostPublicKeySchema, fingerprint: hostKeyFingerprintSchema })
  .strict()
  .refine((k) => fingerprintOrNull(k.publicKey) === k.fingerprint, { message: 'must be the SHA256 fingerprint of publicKey', path: ['fingerprint'] });
export type HostKey = z.infer<typeof hostKeySchema>;
/** The key a run expected and the one the node presented (null when ssh did not show it). */
export const hostKeyMismatchSchema = z
  .object({ expectedFingerprint: hostKeyFingerprintSchema, presentedFingerprint: hostKeyFingerprintSchema.nullable(), presentedPublicKey: hostPublicKeySchema.nullable() })
  .strict();
export type HostKeyMismatch = z.infer<typeof hostKeyMismatchSchema>;
/** SHA-256 of the playbook bundle (src/ansible/playbook-bundle.ts). */
export const playbookDigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a SHA-256)');
/** The one line a person reads about a failure. */
export const ERROR_MESSAGE_MAX = 300;

const ev = <T extends string, S extends z.ZodRawShape>(type: T, data: S) =>
  z.object({ type: z.literal(type), version: z.literal(1), data: z.object(data).strict() });

export const ProvisionRequested = ev('ProvisionRequested', {
  nodeId: idSchema,
  jobId: idSchema,
  ...nodeSpecSchema.shape,
  maxAttempts: z.number().int().min(1).max(10),
  policy: jobPolicySchema,
  /** False for the first provision of a node, true for a re-provision of an existing one. */
  reprovision: z.boolean(),
  /** The bundle digest the caller required; the worker refuses to run another (PLAYBOOK_DIGEST_MISMATCH). */
  expectPlaybook: playbookDigestSchema.optional(),
});
export const JobStarted = ev('JobStarted', { ...jobRef });
export const SshKeyRegistered = ev('SshKeyRegistered', {
  ...jobRef,
  keyId: z.string().min(1),
  fingerprint: z.string().regex(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/),
});
export const ServerCreateRequested = ev('ServerCreateRequested', {
  ...jobRef,
  serverName: z.string().min(1).max(63),
  labels: z.record(z.string(), z.string()),
  /** The host key injected through user_data, recorded before the create POST; its private half never enters an event. */
  hostKey: hostKeySchema.optional(),
});
export const ServerCreated = ev('ServerCreated', {
  ...jobRef,
  serverId: z.string().min(1),
  actionIds: z.array(z.string().min(1)),
  adopted: z.boolean(),
});
export const ActionPolled = ev('ActionPolled', {
  ...jobRef,
  actionId: z.string().min(1),
  status: z.enum(['running', 'success', 'error']),
  progress: z.number().min(0).max(100),
  errorCode: z.string().nullable(),
});
export const ServerReady = ev('ServerReady', {
  ...jobRef,
  serverId: z.string().min(1),
  ipv4: z.string().nullable(),
  ipv6: z.string().nullable(),
  providerStatus: z.string(),
});
export const AnsibleStarted = ev('AnsibleStarted', {
  ...jobRef,
  playbook: z.string().min(1),
  playbookDigest: playbookDigestSchema.optional(),
  productVersion: z.string().min(1).max(64).optional(),
  /** The host key this run trusts; null when the connection is local. */
  hostKeyFingerprint: hostKeyFingerprintSchema.nullable().optional(),
});
export const AnsibleSucceeded = ev('AnsibleSucceeded', {
  ...jobRef,
  recap: recapSchema,
  durationMs: z.number().int().min(0),
  outputTail,
});
export const AnsibleFailed = ev('AnsibleFailed', {
  ...jobRef,
  errorCode: z.string().min(1),
  retryable: z.boolean(),
  exitCode: z.number().int().nullable(),
  recap: recapSchema,
  durationMs: z.number().int().min(0),
  outputTail,
  errorMessage: z.string().max(ERROR_MESSAGE_MAX).optional(),
  hostKeyMismatch: hostKeyMismatchSchema.optional(),
});
export const RetryScheduled = ev('RetryScheduled', {
  ...jobRef,
  /** The attempt that failed; the next one is attempt + 1. */
  errorCode: z.string().min(1),
  errorMessage: z.string(),
  runAfter: iso,
});
export const ProvisionFailed = ev('ProvisionFailed', {
  ...jobRef,
  errorCode: z.string().min(1),
  errorMessage: z.string(),
  step: z.string(),
});
export const ProvisionSucceeded = ev('ProvisionSucceeded', { ...jobRef });
export const JobCancelRequested = ev('JobCancelRequested', { jobId: idSchema, reason: z.string().max(500) });
export const JobCancelled = ev('JobCancelled', { jobId: idSchema, attempt: z.number().int().min(0) });
/** An operator trusts the key a failed run saw; `jobId` is that run's job (the event's correlation). */
export const HostKeyTrusted = z.object({
  type: z.literal('HostKeyTrusted'),
  version: z.literal(1),
  data: z
    .object({ nodeId: idSchema, jobId: idSchema, ...hostKeySchema.shape, previousFingerprint: hostKeyFingerprintSchema.nullable() })
    .strict()
    .refine((d) => fingerprintOrNull(d.publicKey) === d.fingerprint, { message: 'must be the SHA256 fingerprint of publicKey', path: ['fingerprint'] }),
});

export const nodeEventSchemas = [
  ProvisionRequested,
  JobStarted,
  SshKeyRegistered,
  ServerCreateRequested,
  ServerCreated,
  ActionPolled,
  ServerReady,
  AnsibleStarted,
  AnsibleSucceeded,
  AnsibleFailed,
  RetryScheduled,
  ProvisionFailed,
  ProvisionSucceeded,
  JobCancelRequested,
  JobCancelled,
  HostKeyTrusted,
] as const;
export const nodeEventSchema = z.discriminatedUnion('type', nodeEventSchemas);
export type NodeEvent = z.infer<typeof nodeEventSchema>;
export type NodeEventType = NodeEvent['type'];
export type EventOf<T extends NodeEventType> = Extract<NodeEvent, { type: T }>;
export type Recap = z.infer<typeof recapSchema>;

/** Shorthand for building an event body in deciders and tests. */
export const event = <T extends NodeEventType>(type: T, data: EventOf<T>['data']): EventOf<T> =>
  ({ type, version: 1, data }) as EventOf<T>;
