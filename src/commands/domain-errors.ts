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
