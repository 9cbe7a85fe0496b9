import { AppError } from '../errors/app-error.ts';

/**
 * The saga talks to cloud providers only through this port, so a second provider needs no saga change.
 * Ids are strings: providers disagree on id types and the event log should not care.
 */
export interface SshKeyRef {
  keyId: string;
  fingerprint: string;
}

export interface ServerSpec {
  nodeId: string;
  jobId: string;
  /** Deterministic, RFC 1123 hostname derived from the node. */
  name: string;
  serverType: string;
  location: string;
  image: string;
  sshKeyId: string;
  /**
   * True only when no earlier create attempt for this node can have reached the provider (no recorded
   * intent before this one): the look-ups before the POST are then skipped. Name uniqueness still guards.
   */
  knownAbsent?: boolean;
  /**
   * Cloud-init user data (`#cloud-config`, at most 32 KiB) for the first boot: the saga's host key.
   * Holds a private key: adapters send it and never log it.
   */
  userData?: string;
}

export type ServerStatus =
  | 'initializing' | 'starting' | 'running' | 'stopping' | 'off'
  | 'deleting' | 'migrating' | 'rebuilding' | 'unknown';

export interface ProviderServer {
  serverId: string;
  name: string;
  status: ServerStatus;
  ipv4: string | null;
  ipv6: string | null;
  labels: Record<string, string>;
}

export interface CreatedServer {
  serverId: string;
  /** `action` and every `next_actions` id: all must succeed before the server is usable. */
  actionIds: string[];
  /** True when an existing server with our ownership labels was adopted instead of created. */
  adopted: boolean;
}

export interface ActionState {
  actionId: string;
  status: 'running' | 'success' | 'error';
  progress: number;
  error: { code: string; message: string } | null;
}

export interface ProviderPort {
  readonly name: string;
  ensureSshKey(publicKey: string): Promise<SshKeyRef>;
  /** Looks up by ownership label first, then by name. */
  findServer(nodeId: string, name: string): Promise<ProviderServer | null>;
  /** Looks up before creating and adopts a server that our labels prove is ours. */
  createServer(spec: ServerSpec): Promise<CreatedServer>;
  getActions(ids: string[]): Promise<ActionState[]>;
  getServer(id: string): Promise<ProviderServer>;
  /**
   * The ownership labels createServer will put on the node's server, so the saga can record them
   * in ServerCreateRequested before the POST. Optional: providers without labels omit it.
   */
  serverLabels?(nodeId: string, jobId: string): Record<string, string>;
}

export type ProviderErrorCode =
  | 'PROVIDER_AUTH_FAILED'
  | 'PROVIDER_INVALID_REQUEST'
  | 'PROVIDER_QUOTA_EXCEEDED'
  | 'PROVIDER_RESOURCE_UNAVAILABLE'
  | 'PROVIDER_RATE_LIMITED'
  | 'PROVIDER_LOCKED'
  | 'PROVIDER_UNAVAILABLE'
  | 'PROVIDER_SSH_KEY_CONFLICT'
  | 'PROVIDER_SSH_KEY_REGISTRATION_FAILED'
  | 'PROVIDER_SERVER_NAME_CONFLICT'
  | 'PROVIDER_SERVER_NOT_FOUND'
  | 'PROVIDER_ACTION_FAILED'
  | 'PROVIDER_ACTION_TIMEOUT'
  | 'PROVIDER_BAD_RESPONSE';

export class ProviderError extends AppError {
  constructor(
    override readonly code: ProviderErrorCode,
    message: string,
    retryable: boolean,
    details?: Record<string, unknown>,
    /** When the provider says when to come back (429 RateLimit-Reset, 423 locked). */
    readonly retryAfterMs?: number,
  ) {
    super(code, message, retryable, details);
  }
}
