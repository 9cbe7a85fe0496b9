import { AppError } from '../errors/app-error.ts';

/** The stable HTTP error codes of docs/error-codes.md (api section). */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'job_active'
  | 'job_not_cancellable'
  | 'ssh_user_unsupported'
  | 'host_key_not_seen'
  | 'playbook_digest_mismatch'
  | 'node_unreadable'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_ready'
  | 'internal';

export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string; details?: Record<string, unknown> };
}

/** An error the API answers as it is: status, stable code, a message written for the caller. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} does not exist`);

/** Domain rejections by their stable code; anything else is not the caller's fault. */
const DOMAIN: Record<string, { status: number; code: ApiErrorCode }> = {
  NODE_NOT_FOUND: { status: 404, code: 'not_found' },
  JOB_NOT_FOUND: { status: 404, code: 'not_found' },
  NODE_EXISTS: { status: 409, code: 'conflict' },
  // The node's stream kept changing under the command through every retry of the handler.
  WRONG_EXPECTED_VERSION: { status: 409, code: 'conflict' },
  JOB_ACTIVE: { status: 409, code: 'job_active' },
  JOB_NOT_CANCELLABLE: { status: 409, code: 'job_not_cancellable' },
  SSH_USER_UNSUPPORTED: { status: 422, code: 'ssh_user_unsupported' },
  HOST_KEY_NOT_SEEN: { status: 409, code: 'host_key_not_seen' },
  PLAYBOOK_DIGEST_MISMATCH: { status: 409, code: 'playbook_digest_mismatch' },
  // A node whose log holds a message that does not decode (ADR 0012): its state cannot be folded.
  EVENT_INVALID: { status: 409, code: 'node_unreadable' },
  // An append without an answer (a leader election in a cluster): try again, nothing is appended twice.
  EVENTSTORE_UNAVAILABLE: { status: 503, code: 'not_ready' },
};

export const fromDomainError = (e: AppError): ApiError | null => {
  const m = DOMAIN[e.code];
  return m ? new ApiError(m.status, m.code, e.message, e.details) : null;
};

/** Fastify's own 4xx errors (parser, limits) by status; their messages carry no infrastructure output. */
const BY_STATUS: Record<number, ApiErrorCode> = {
  400: 'bad_request',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

export const fromFastifyStatus = (status: number | undefined, message: string): ApiError | null => {
  const code = status ? BY_STATUS[status] : undefined;
  return status && code ? new ApiError(status, code, message) : null;
};
