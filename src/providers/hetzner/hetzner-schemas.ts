import { z } from 'zod';

/**
 * The subset of the Hetzner Cloud API that node acquisition uses, as zod schemas.
 * The client validates every response with these and the simulator builds its responses
 * from the same types, so the two cannot drift apart.
 * Objects are not strict: Hetzner adds fields (and removes some, e.g. `datacenter` after July 2026),
 * so we declare only what we read and let unknown keys through.
 */

const id = z.number().int().positive();
const labels = z.record(z.string(), z.string());
const timestamp = z.string().min(1);

export const errorEnvelopeSchema = z.object({
  error: z.object({
    code: z.string().min(1),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;

export const paginationSchema = z.object({
  page: z.number().int().min(1),
  per_page: z.number().int().min(1).max(50),
  previous_page: z.number().int().nullable(),
  next_page: z.number().int().nullable(),
  last_page: z.number().int().nullable(),
  total_entries: z.number().int().min(0).nullable(),
});
export const metaSchema = z.object({ pagination: paginationSchema });
export type Pagination = z.infer<typeof paginationSchema>;

export const actionStatusSchema = z.enum(['running', 'success', 'error']);
export const actionSchema = z.object({
  id,
  command: z.string(),
  status: actionStatusSchema,
  progress: z.number().min(0).max(100),
  started: timestamp,
  finished: timestamp.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  resources: z.array(z.object({ id, type: z.string() })),
});
export type HetznerAction = z.infer<typeof actionSchema>;

export const sshKeySchema = z.object({
  id,
  name: z.string(),
  fingerprint: z.string(),
  public_key: z.string(),
  labels,
  created: timestamp,
});
export type HetznerSshKey = z.infer<typeof sshKeySchema>;

export const serverStatusSchema = z.enum([
  'initializing', 'starting', 'running', 'stopping', 'off', 'deleting', 'migrating', 'rebuilding', 'unknown',
]);

export const serverSchema = z.object({
  id,
  name: z.string(),
  status: serverStatusSchema,
  created: timestamp,
  labels,
  // ipv4 is null on IPv6-only servers; hcloud-js throws here, we must not.
  public_net: z.object({
    ipv4: z.object({ ip: z.string() }).nullable(),
    ipv6: z.object({ ip: z.string() }).nullable(),
  }),
});
export type HetznerServer = z.infer<typeof serverSchema>;

export const sshKeyListSchema = z.object({ ssh_keys: z.array(sshKeySchema), meta: metaSchema });
export const sshKeyResponseSchema = z.object({ ssh_key: sshKeySchema });
export const serverListSchema = z.object({ servers: z.array(serverSchema), meta: metaSchema });
export const serverResponseSchema = z.object({ server: serverSchema });
export const createServerResponseSchema = z.object({
  server: serverSchema,
  action: actionSchema,
  next_actions: z.array(actionSchema),
  root_password: z.string().nullable(),
});
export type CreateServerResponse = z.infer<typeof createServerResponseSchema>;
export const actionListSchema = z.object({ actions: z.array(actionSchema), meta: metaSchema });
export const actionResponseSchema = z.object({ action: actionSchema });

export const createSshKeyRequestSchema = z.object({
  name: z.string().min(1),
  public_key: z.string().min(1),
  labels: labels.optional(),
});
export type CreateSshKeyRequest = z.infer<typeof createSshKeyRequestSchema>;

export const createServerRequestSchema = z.object({
  name: z.string().min(1),
  server_type: z.string().min(1),
  image: z.string().min(1),
  location: z.string().min(1).optional(),
  ssh_keys: z.array(z.union([id, z.string().min(1)])).optional(),
  labels: labels.optional(),
  // Hetzner's limit is 32 KiB; the simulator checks the byte length itself, as Hetzner answers 422 invalid_input.
  user_data: z.string().optional(),
  start_after_create: z.boolean().optional(),
});
export type CreateServerRequest = z.infer<typeof createServerRequestSchema>;
