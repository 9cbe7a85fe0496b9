import type { Database, Statement } from 'better-sqlite3';
import { evolve, initialNodeState, isActive, jobStep, type NodeState } from '../events/node-state.ts';
import { OpenBatch, type Touched } from './open-batch.ts';
import { isUndecodable, type ProjectedMessage, type UndecodableMessage } from './projected-message.ts';
import { jobColumns, nodeColumns, upsertSql, type JobView, type NodeRow } from './read-model-views.ts';
import { STATE_CACHE_BUDGET, StateCache } from './state-cache.ts';

/**
 * A finished job's row is final and no later event can touch it (the decider refuses commands for
 * finished jobs), so the projection keeps only active jobs in its stored state: a node provisioned
 * a hundred times folds as cheaply as a new one.
 */
const withoutFinishedJobs = (s: NodeState): NodeState => {
  const active = Object.entries(s.jobs).filter(([, j]) => isActive(j));
  return active.length === Object.keys(s.jobs).length ? s : { ...s, jobs: Object.fromEntries(active) };
};

/** A node that a batch broke, and the message that did not decode. */
export interface NewlyBroken {
  nodeId: string;
  message: UndecodableMessage;
}

/**
 * Applies decisions to one generation of the read model. It folds each node's state with the
 * decider's own `evolve`, so the read model can never disagree with what the decider sees, and
 * writes the node row and the touched job rows from it: node and job status change together.
 *
 * A message that does not decode breaks only its own node: folding past it would give that
 * node a wrong state, so its rows stay as they were and its later messages are only counted.
 */
export class NodeProjection {
  private readonly getState: Statement<[string], { state: string }>;
  private readonly putState: Statement<[string, string, number]>;
  private readonly putNode: Statement<NodeRow>;
  private readonly putJob: Statement<JobView>;
  private readonly putBroken: Statement<[string, number, string, string, number]>;
  private readonly addSkipped: Statement<[number, string]>;
  private readonly putCheckpoint: Statement<[string, number]>;
  private readonly states: StateCache;
  /** Every broken node of this generation: few, and needed for every message. */
  private readonly broken: Set<string>;
  /**
   * The generation had no stored state when this projection opened it (a rebuild, a first catch-up):
   * as long as the cache has dropped nothing, a node missing from it has no stored state either, so a
   * replay of a large fleet skips one lookup per node.
   */
  private readonly startedEmpty: boolean;

  constructor(
    private readonly db: Database,
    suffix: string,
    readonly checkpointName: string,
    cacheBudget = STATE_CACHE_BUDGET,
  ) {
    this.states = new StateCache(cacheBudget);
    this.getState = db.prepare(`SELECT state FROM node_state${suffix} WHERE node_id = ?`);
    this.putState = db.prepare(`INSERT INTO node_state${suffix}(node_id, state, position) VALUES (?, ?, ?)
      ON CONFLICT(node_id) DO UPDATE SET state = excluded.state, position = excluded.position`);
    this.putNode = db.prepare(upsertSql(nodeColumns, `nodes${suffix}`));
    this.putJob = db.prepare(upsertSql(jobColumns, `jobs${suffix}`));
    this.putBroken = db.prepare(`INSERT INTO broken_nodes${suffix}(node_id, position, reason, stored_at, skipped) VALUES (?, ?, ?, ?, ?)`);
    this.addSkipped = db.prepare(`UPDATE broken_nodes${suffix} SET skipped = skipped + ? WHERE node_id = ?`);
    this.putCheckpoint = db.prepare(`INSERT INTO projection_checkpoints(name, position) VALUES (?, ?)
      ON CONFLICT(name) DO UPDATE SET position = excluded.position`);
    this.startedEmpty = db.prepare(`SELECT 1 FROM node_state${suffix} LIMIT 1`).get() === undefined;
    this.broken = new Set((db.prepare(`SELECT node_id FROM broken_nodes${suffix}`).all() as Array<{ node_id: string }>).map((r) => r.node_id));
  }

  /** Folds and commits one batch: see fold and commit. */
  applyBatch(batch: readonly ProjectedMessage[], nodeIdOf: (subject: string) => string, beforeCommit?: () => void): NewlyBroken[] {
    const open = new OpenBatch();
    this.fold(open, batch, nodeIdOf);
    return this.commit(open, beforeCommit);
  }

  /**
   * Folds messages into an open batch, in memory only: nothing is written until `commit`. A node's
   * state comes from the batch once it is touched, else from the committed cache or table.
   */
  fold(open: OpenBatch, batch: Iterable<ProjectedMessage>, nodeIdOf: (subject: string) => string): void {
    const { touched, newlyBroken, skipped } = open;
    for (const d of batch) {
      open.count++;
      open.last = d.position;
      const nodeId = nodeIdOf(d.subject);
      const fresh = newlyBroken.get(nodeId);
      if (fresh) fresh.skipped++;
      else if (this.broken.has(nodeId)) skipped.set(nodeId, (skipped.get(nodeId) ?? 0) + 1);
      else if (isUndecodable(d)) newlyBroken.set(nodeId, { message: d, skipped: 0 });
      else {
        let t = touched.get(nodeId);
        if (!t) touched.set(nodeId, (t = { state: this.stateOf(nodeId), size: 0, jobs: new Map(), position: 0, at: '' }));
        for (const e of d.events) {
          const before = t.state.jobs[e.data.jobId];
          t.state = evolve(t.state, e, e.occurredAt);
          // evolve replaces a job it changes: an event that leaves the job as it was (HostKeyTrusted names a
          // finished one) does not rewrite its row, so the rows do not depend on where batches end.
          if (t.state.jobs[e.data.jobId] !== before) t.jobs.set(e.data.jobId, { position: d.position, at: e.occurredAt });
          t.at = e.occurredAt;
        }
        t.position = d.position;
      }
    }
  }

  /**
   * Writes an open batch and moves the checkpoint in one transaction: a crash anywhere inside leaves
   * both untouched, so the batch is simply applied again. Each node's rows are written once per
   * batch, from its state folded over the whole batch. Nodes broken by this batch are recorded in
   * the same transaction and returned. `beforeCommit` exists for crash tests.
   */
  commit(open: OpenBatch, beforeCommit?: () => void): NewlyBroken[] {
    if (open.count === 0) return [];
    const { touched, newlyBroken, skipped } = open;
    this.db.transaction(() => {
      // A node broken in this batch still gets the rows folded from its messages before the bad one.
      for (const [nodeId, t] of touched) {
        this.writeRows(nodeId, t);
        t.state = withoutFinishedJobs(t.state);
        const json = JSON.stringify(t.state);
        t.size = json.length;
        this.putState.run(nodeId, json, t.position);
      }
      for (const [nodeId, { message: m, skipped: n }] of newlyBroken) this.putBroken.run(nodeId, m.position, m.reason, m.storedAt, n);
      for (const [nodeId, n] of skipped) this.addSkipped.run(n, nodeId);
      this.putCheckpoint.run(this.checkpointName, open.last);
      beforeCommit?.();
    })();
    // Only committed states enter the cache: a rolled-back batch leaves it as it was.
    for (const [nodeId, t] of touched) this.states.set(nodeId, t.state, t.size);
    for (const nodeId of newlyBroken.keys()) this.broken.add(nodeId);
    return [...newlyBroken].map(([nodeId, { message }]) => ({ nodeId, message }));
  }

  private stateOf(nodeId: string): NodeState {
    const cached = this.states.get(nodeId);
    if (cached) return cached;
    if (this.startedEmpty && !this.states.evicted) return initialNodeState();
    const row = this.getState.get(nodeId);
    return row ? (JSON.parse(row.state) as NodeState) : initialNodeState();
  }

  /** Nodes and characters held by the folded-state cache. */
  get cached(): { nodes: number; chars: number } {
    return this.states.size;
  }

  private writeRows(nodeId: string, t: Touched): void {
    const s = t.state;
    if (s.spec && s.status) {
      this.putNode.run({
        id: nodeId,
        name: s.spec.name,
        status: s.status,
        provider: s.spec.provider,
        serverType: s.spec.serverType,
        location: s.spec.location,
        image: s.spec.image,
        sshUser: s.spec.sshUser,
        sshPort: s.spec.sshPort,
        providerServerId: s.providerServerId,
        ipv4: s.ipv4,
        ipv6: s.ipv6,
        currentJobId: s.currentJobId,
        lastJobId: s.lastJobId,
        updatedAt: t.at,
        position: t.position,
        // States stored before host keys existed lack them.
        hostKeyFingerprint: s.hostKey?.fingerprint ?? null,
        hostKeySource: s.hostKey?.source ?? null,
        presentedHostKeyFingerprint: s.presentedHostKey?.fingerprint ?? null,
      });
    }
    for (const [jobId, { position, at }] of t.jobs) {
      const job = s.jobs[jobId];
      if (!job) continue;
      this.putJob.run({
        id: jobId,
        nodeId,
        kind: 'node_provision',
        status: job.status,
        step: jobStep(job),
        attempt: job.attempt,
        maxAttempts: job.policy.maxAttempts,
        errorCode: job.errorCode,
        errorMessage: job.errorMessage,
        // Job states stored before outputTail existed lack it.
        outputTail: job.outputTail ?? null,
        runAfter: job.runAfter,
        requestedAt: job.requestedAt,
        startedAt: job.startedAt,
        finishedAt: job.finishedAt,
        updatedAt: at,
        position,
        playbookDigest: job.playbookDigest ?? null,
        productVersion: job.productVersion ?? null,
        hostKeyFingerprint: job.hostKeyFingerprint ?? null,
        hostKeyMismatchExpected: job.hostKeyMismatch?.expectedFingerprint ?? null,
        hostKeyMismatchPresented: job.hostKeyMismatch?.presentedFingerprint ?? null,
      });
    }
  }
}
