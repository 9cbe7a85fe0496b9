import { AppError } from '../errors/app-error.ts';

/** Rejections of the node decider. Each is a stable code in docs/error-codes.md. */
export class NodeNotFound extends AppError {
  constructor(nodeId: string) {
    super('NODE_NOT_FOUND', `node ${nodeId} does not exist`, false, { nodeId });
  }
}

export class NodeExists extends AppError {
  constructor(nodeId: string) {
    super('NODE_EXISTS', `node ${nodeId} already exists`, false, { nodeId });
  }
}

/**
 * NODE_EXISTS for the one way a create can meet an existing node: an Idempotency-Key (which fixes
 * the node id) reused with another body. The message says so; no details, as the API always answered.
 */
export class IdempotencyKeyReused extends AppError {
  constructor() {
    super('NODE_EXISTS', 'this Idempotency-Key was already used with a different request body', false);
  }
}

export class JobActive extends AppError {
  constructor(readonly activeJobId: string) {
    super('JOB_ACTIVE', `job ${activeJobId} is still queued or running for this node`, false, { activeJobId });
  }
}

export class JobNotFound extends AppError {
  constructor(jobId: string) {
    super('JOB_NOT_FOUND', `job ${jobId} does not exist`, false, { jobId });
  }
}

export class JobNotCancellable extends AppError {
  constructor(jobId: string, status: string) {
    super('JOB_NOT_CANCELLABLE', `job ${jobId} is ${status} and can no longer be cancelled`, false, { jobId, status });
  }
}

/**
 * A saga step result that no longer fits the job: the step was already recorded, or the
 * attempt is over. At-least-once delivery makes this normal; the saga acks and moves on.
 */
export class StaleStep extends AppError {
  constructor(command: string, reason: string) {
    super('STALE_STEP', `${command} does not apply: ${reason}`, false, { command });
  }
}

export const SUPPORTED_SSH_USER = 'root';

/**
 * The playbook connects as the node's sshUser and never uses `become`, so only root can converge a
 * node. A non-root user is refused before anything is appended, not discovered by a failed run (ADR 0071).
 */
export class SshUserUnsupported extends AppError {
  constructor(sshUser: string) {
    super('SSH_USER_UNSUPPORTED', `sshUser ${sshUser} is not supported: nodes are provisioned as root (no become/sudo)`, false, { sshUser, supported: [SUPPORTED_SSH_USER] });
  }
}

/** The operator may only trust the key a failed run actually saw: a typo or a guessed key is refused. */
export class HostKeyNotSeen extends AppError {
  constructor(nodeId: string, fingerprint: string, presentedFingerprint: string | null) {
    super(
      'HOST_KEY_NOT_SEEN',
      presentedFingerprint
        ? `${fingerprint} is not the host key the last failed run of node ${nodeId} saw (${presentedFingerprint})`
        : `no run of node ${nodeId} has seen a host key other than the trusted one; nothing to trust`,
      false,
      { nodeId, fingerprint, presentedFingerprint },
    );
  }
}

/** The caller required a playbook bundle that this control plane does not have: nothing would run what they expect. */
export class PlaybookDigestMismatch extends AppError {
  constructor(expected: string, actual: string) {
    super('PLAYBOOK_DIGEST_MISMATCH', `the control plane's playbook bundle is ${actual}, not the expected ${expected}`, false, { expected, actual });
  }
}
