import type { Database } from 'better-sqlite3';

export interface NodeView {
  id: string;
  name: string;
  status: string;
  provider: string;
  serverType: string;
  location: string;
  image: string;
  sshUser: string;
  sshPort: number;
  providerServerId: string | null;
  ipv4: string | null;
  currentJobId: string | null;
  lastJobId: string | null;
  updatedAt: string;
  position: number;
}

export interface JobView {
  id: string;
  nodeId: string;
  kind: 'node_provision';
  status: string;
  step: string;
  attempt: number;
  maxAttempts: number;
  errorCode: string | null;
  errorMessage: string | null;
  runAfter: string | null;
  requestedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  position: number;
}

interface NodeRow {
  id: string;
  name: string;
  status: string;
  provider: string;
  server_type: string;
  location: string;
  image: string;
  ssh_user: string;
  ssh_port: number;
  provider_server_id: string | null;
  ipv4: string | null;
  current_job_id: string | null;
  last_job_id: string | null;
  updated_at: string;
  last_position: number;
}

interface JobRow {
  id: string;
  node_id: string;
  status: string;
  step: string;
  attempt: number;
  max_attempts: number;
  error_code: string | null;
  error_message: string | null;
  run_after: string | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
  last_position: number;
}

const toNode = (r: NodeRow): NodeView => ({
  id: r.id,
  name: r.name,
  status: r.status,
  provider: r.provider,
  serverType: r.server_type,
  location: r.location,
  image: r.image,
  sshUser: r.ssh_user,
  sshPort: r.ssh_port,
  providerServerId: r.provider_server_id,
  ipv4: r.ipv4,
  currentJobId: r.current_job_id,
  lastJobId: r.last_job_id,
  updatedAt: r.updated_at,
  position: r.last_position,
});

const toJob = (r: JobRow): JobView => ({
  id: r.id,
  nodeId: r.node_id,
  kind: 'node_provision',
  status: r.status,
  step: r.step,
  attempt: r.attempt,
  maxAttempts: r.max_attempts,
  errorCode: r.error_code,
  errorMessage: r.error_message,
  runAfter: r.run_after,
  requestedAt: r.requested_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  position: r.last_position,
});

/** Read-only queries over the live read model. Statements are prepared per call: a rebuild swaps the tables underneath. */
export class ReadModelQueries {
  constructor(private readonly db: Database) {}

  listNodes(o: { limit: number; afterId?: string }): NodeView[] {
    const rows = this.db
      .prepare('SELECT * FROM nodes WHERE id > ? ORDER BY id LIMIT ?')
      .all(o.afterId ?? '', o.limit) as NodeRow[];
    return rows.map(toNode);
  }

  getNode(id: string): NodeView | null {
    const row = this.db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
    return row ? toNode(row) : null;
  }

  getJob(id: string): JobView | null {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  jobsOfNode(nodeId: string): JobView[] {
    return (this.db.prepare('SELECT * FROM jobs WHERE node_id = ? ORDER BY requested_at').all(nodeId) as JobRow[]).map(toJob);
  }

  countJobsByStatus(): Record<string, number> {
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as Array<{ status: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Every row of both tables, for comparing generations. */
  dump(): { nodes: NodeView[]; jobs: JobView[] } {
    return {
      nodes: (this.db.prepare('SELECT * FROM nodes ORDER BY id').all() as NodeRow[]).map(toNode),
      jobs: (this.db.prepare('SELECT * FROM jobs ORDER BY id').all() as JobRow[]).map(toJob),
    };
  }
}
