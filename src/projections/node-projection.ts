import type { Database, Statement } from 'better-sqlite3';
import type { StoredDecision } from '../events/event-codec.ts';
import { evolve, initialNodeState, isActive, jobStep, type NodeState } from '../events/node-state.ts';

/** Folded states kept in memory so replay does not re-read and re-parse them every batch. */
const MAX_CACHED_STATES = 10_000;

/**
 * A finished job's row is final and no later event can touch it (the decider refuses commands for
 * finished jobs), so the projection keeps only active jobs in its stored state: a node provisioned
 * a hundred times folds as cheaply as a new one.
 */
const withoutFinishedJobs = (s: NodeState): NodeState => {
  const active = Object.entries(s.jobs).filter(([, j]) => isActive(j));
  return active.length === Object.keys(s.jobs).length ? s : { ...s, jobs: Object.fromEntries(active) };
};

/** A node touched by a batch: its folded state, and per job the last position and time that touched it. */
interface Touched {
  state: NodeState;
  jobs: Map<string, { position: number; at: string }>;
  position: number;
  at: string;
}

/**
 * Applies decisions to one generation of the read model. It folds each node's state with the
 * decider's own `evolve`, so the read model can never disagree with what the decider sees, and
 * writes the node row and the touched job rows from it: node and job status change together.
 */
export class NodeProjection {
  private readonly getState: Statement<[string], { state: string }>;
  private readonly putState: Statement<[string, string, number]>;
  private readonly putNode: Statement<Record<string, unknown>>;
  private readonly putJob: Statement<Record<string, unknown>>;
  private readonly putCheckpoint: Statement<[string, number]>;
  private readonly states = new Map<string, NodeState>();

  constructor(
    private readonly db: Database,
    suffix: string,
    readonly checkpointName: string,
  ) {
    this.getState = db.prepare(`SELECT state FROM node_state${suffix} WHERE node_id = ?`);
    this.putState = db.prepare(`INSERT INTO node_state${suffix}(node_id, state, position) VALUES (?, ?, ?)
      ON CONFLICT(node_id) DO UPDATE SET state = excluded.state, position = excluded.position`);
    this.putNode = db.prepare(`INSERT INTO nodes${suffix}
      (id, name, status, provider, server_type, location, image, ssh_user, ssh_port, provider_server_id, ipv4, ipv6, current_job_id, last_job_id, updated_at, last_position)
      VALUES (@id, @name, @status, @provider, @server_type, @location, @image, @ssh_user, @ssh_port, @provider_server_id, @ipv4, @ipv6, @current_job_id, @last_job_id, @updated_at, @last_position)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, status = excluded.status, provider = excluded.provider, server_type = excluded.server_type,
        location = excluded.location, image = excluded.image, ssh_user = excluded.ssh_user, ssh_port = excluded.ssh_port,
        provider_server_id = excluded.provider_server_id, ipv4 = excluded.ipv4, ipv6 = excluded.ipv6, current_job_id = excluded.current_job_id,
        last_job_id = excluded.last_job_id, updated_at = excluded.updated_at, last_position = excluded.last_position`);
    this.putJob = db.prepare(`INSERT INTO jobs${suffix}
      (id, node_id, kind, status, step, attempt, max_attempts, error_code, error_message, run_after, requested_at, started_at, finished_at, updated_at, last_position)
      VALUES (@id, @node_id, 'node_provision', @status, @step, @attempt, @max_attempts, @error_code, @error_message, @run_after, @requested_at, @started_at, @finished_at, @updated_at, @last_position)
      ON CONFLICT(id) DO UPDATE SET status = excluded.status, step = excluded.step, attempt = excluded.attempt, max_attempts = excluded.max_attempts,
        error_code = excluded.error_code, error_message = excluded.error_message, run_after = excluded.run_after, started_at = excluded.started_at,
        finished_at = excluded.finished_at, updated_at = excluded.updated_at, last_position = excluded.last_position`);
    this.putCheckpoint = db.prepare(`INSERT INTO projection_checkpoints(name, position) VALUES (?, ?)
      ON CONFLICT(name) DO UPDATE SET position = excluded.position`);
  }

  /**
   * Applies a batch and moves the checkpoint in one transaction: a crash anywhere inside leaves
   * both untouched, so the batch is simply applied again. Each node's rows are written once per
   * batch, from its state folded over the whole batch. `beforeCommit` exists for crash tests.
   */
  applyBatch(batch: readonly StoredDecision[], nodeIdOf: (subject: string) => string, beforeCommit?: () => void): void {
    const last = batch.at(-1);
    if (!last) return;
    const touched = new Map<string, Touched>();
    this.db.transaction(() => {
      for (const d of batch) {
        const nodeId = nodeIdOf(d.subject);
        const t = touched.get(nodeId) ?? { state: this.stateOf(nodeId), jobs: new Map(), position: 0, at: '' };
        for (const e of d.events) {
          t.state = evolve(t.state, e, e.occurredAt);
          t.jobs.set(e.data.jobId, { position: d.position, at: e.occurredAt });
          t.at = e.occurredAt;
        }
        t.position = d.position;
        touched.set(nodeId, t);
      }
      for (const [nodeId, t] of touched) {
        this.writeRows(nodeId, t);
        t.state = withoutFinishedJobs(t.state);
        this.putState.run(nodeId, JSON.stringify(t.state), t.position);
      }
      this.putCheckpoint.run(this.checkpointName, last.position);
      beforeCommit?.();
    })();
    // Only committed states enter the cache: a rolled-back batch leaves it as it was.
    for (const [nodeId, t] of touched) this.remember(nodeId, t.state);
  }

  private stateOf(nodeId: string): NodeState {
    const cached = this.states.get(nodeId);
    if (cached) return cached;
    const row = this.getState.get(nodeId);
    return row ? (JSON.parse(row.state) as NodeState) : initialNodeState();
  }

  private remember(nodeId: string, s: NodeState): void {
    this.states.delete(nodeId);
    this.states.set(nodeId, s);
    if (this.states.size > MAX_CACHED_STATES) {
      const oldest = this.states.keys().next().value;
      if (oldest !== undefined) this.states.delete(oldest);
    }
  }

  private writeRows(nodeId: string, t: Touched): void {
    const s = t.state;
    if (s.spec && s.status) {
      this.putNode.run({
        id: nodeId,
        name: s.spec.name,
        status: s.status,
        provider: s.spec.provider,
        server_type: s.spec.serverType,
        location: s.spec.location,
        image: s.spec.image,
        ssh_user: s.spec.sshUser,
        ssh_port: s.spec.sshPort,
        provider_server_id: s.providerServerId,
        ipv4: s.ipv4,
        ipv6: s.ipv6,
        current_job_id: s.currentJobId,
        last_job_id: s.lastJobId,
        updated_at: t.at,
        last_position: t.position,
      });
    }
    for (const [jobId, { position, at }] of t.jobs) {
      const job = s.jobs[jobId];
      if (!job) continue;
      this.putJob.run({
        id: jobId,
        node_id: nodeId,
        status: job.status,
        step: jobStep(job),
        attempt: job.attempt,
        max_attempts: job.policy.maxAttempts,
        error_code: job.errorCode,
        error_message: job.errorMessage,
        run_after: job.runAfter,
        requested_at: job.requestedAt,
        started_at: job.startedAt,
        finished_at: job.finishedAt,
        updated_at: at,
        last_position: position,
      });
    }
  }
}
