import type { Database } from 'better-sqlite3';
import { HEALTHY, jobColumns, nodeColumns, selectList, type JobView, type NodeRow, type NodeView } from './read-model-views.ts';

export type { JobView, NodeView } from './read-model-views.ts';

/** A node whose log holds a message that does not decode (see NodeProjection). */
export interface BrokenNode {
  nodeId: string;
  position: number;
  reason: string;
  at: string;
  skipped: number;
}

interface NodeWithHealth extends NodeRow {
  brokenPosition: number | null;
  brokenReason: string | null;
  brokenAt: string | null;
  brokenSkipped: number | null;
}

const NODE_SELECT = `SELECT ${selectList(nodeColumns, 'n')},
  b.position AS brokenPosition, b.reason AS brokenReason, b.stored_at AS brokenAt, b.skipped AS brokenSkipped
  FROM nodes n LEFT JOIN broken_nodes b ON b.node_id = n.id`;
const JOB_SELECT = `SELECT ${selectList(jobColumns, 'j')} FROM jobs j`;
const BROKEN_SELECT = 'SELECT node_id AS nodeId, position, reason, stored_at AS at, skipped FROM broken_nodes';

const toNode = ({ brokenPosition, brokenReason, brokenAt, brokenSkipped, ...row }: NodeWithHealth): NodeView => ({
  ...row,
  projection: brokenPosition === null ? HEALTHY : { broken: true, position: brokenPosition, reason: brokenReason, at: brokenAt, skipped: brokenSkipped ?? 0 },
});

/** Read-only queries over the live read model. Statements are prepared per call: a rebuild swaps the tables underneath. */
export class ReadModelQueries {
  constructor(private readonly db: Database) {}

  listNodes(o: { limit: number; afterId?: string }): NodeView[] {
    const rows = this.db.prepare(`${NODE_SELECT} WHERE n.id > ? ORDER BY n.id LIMIT ?`).all(o.afterId ?? '', o.limit) as NodeWithHealth[];
    return rows.map(toNode);
  }

  getNode(id: string): NodeView | null {
    const row = this.db.prepare(`${NODE_SELECT} WHERE n.id = ?`).get(id) as NodeWithHealth | undefined;
    return row ? toNode(row) : null;
  }

  getJob(id: string): JobView | null {
    return (this.db.prepare(`${JOB_SELECT} WHERE j.id = ?`).get(id) as JobView | undefined) ?? null;
  }

  jobsOfNode(nodeId: string): JobView[] {
    return this.db.prepare(`${JOB_SELECT} WHERE j.node_id = ? ORDER BY j.requested_at`).all(nodeId) as JobView[];
  }

  countJobsByStatus(): Record<string, number> {
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as Array<{ status: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** How many nodes the projection has marked broken: for the metric and readiness. */
  brokenNodeCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM broken_nodes').get() as { n: number }).n;
  }

  /** The broken nodes by id, including those broken before their first good message (they have no node row). */
  brokenNodes(limit = 100): BrokenNode[] {
    return this.db.prepare(`${BROKEN_SELECT} ORDER BY node_id LIMIT ?`).all(limit) as BrokenNode[];
  }

  /** Every row of the tables, for comparing generations. */
  dump(): { nodes: NodeView[]; jobs: JobView[]; broken: BrokenNode[] } {
    return {
      nodes: (this.db.prepare(`${NODE_SELECT} ORDER BY n.id`).all() as NodeWithHealth[]).map(toNode),
      jobs: this.db.prepare(`${JOB_SELECT} ORDER BY j.id`).all() as JobView[],
      broken: this.db.prepare(`${BROKEN_SELECT} ORDER BY node_id`).all() as BrokenNode[],
    };
  }
}
