import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/commands/node-decider.ts';
import type { NodeCommand } from '../../src/commands/node-commands.ts';
import type { StoredDecision } from '../../src/events/event-codec.ts';
import { toEnvelopes } from '../../src/events/envelope.ts';
import { evolve, initialNodeState, type NodeState } from '../../src/events/node-state.ts';
import { NodeProjection } from '../../src/projections/node-projection.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';
import { openReadModelDb } from '../../src/projections/read-model-schema.ts';
import { StateCache } from '../../src/projections/state-cache.ts';
import { ctx, policy, spec } from '../support/node-fixtures.ts';

describe('StateCache', () => {
  it('holds states up to its budget of JSON characters and drops the least recently used first', () => {
    const cache = new StateCache(100);
    const s = initialNodeState();
    cache.set('a', s, 40);
    cache.set('b', s, 40);
    expect(cache.evicted).toBe(false);
    cache.get('a');
    cache.set('a', s, 40); // touched again: now the newest
    cache.set('c', s, 40);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(s);
    expect(cache.get('c')).toBe(s);
    expect(cache.size).toEqual({ nodes: 2, chars: 80 });
    expect(cache.evicted).toBe(true);
  });
});

describe('NodeProjection state cache', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-cache-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Two batches over the same nodes: the second folds on the states the first one stored. */
  const batches = (): StoredDecision[][] => {
    const states = new Map<string, NodeState>();
    let position = 0;
    const decision = (nodeId: string, cmd: NodeCommand): StoredDecision => {
      const s = states.get(nodeId) ?? initialNodeState();
      const events = toEnvelopes(nodeId, decide(cmd, s), ctx());
      states.set(nodeId, events.reduce((acc, e) => evolve(acc, e, e.occurredAt), s));
      return { position: ++position, subject: `pl.node.${nodeId}`, events };
    };
    const nodes = ['n1', 'n2', 'n3'];
    return [
      nodes.map((n) => decision(n, { type: 'RequestProvision', nodeId: n, jobId: `${n}-j`, spec: spec({ name: n }), policy: policy() })),
      nodes.map((n) => decision(n, { type: 'StartAttempt', jobId: `${n}-j` })),
    ];
  };

  const project = (name: string, budget: number) => {
    const db = openReadModelDb(join(dir, `${name}.db`));
    const p = new NodeProjection(db, '', 'nodes', budget);
    for (const b of batches()) p.applyBatch(b, (subject) => subject.slice('pl.node.'.length));
    const dump = new ReadModelQueries(db).dump();
    db.close();
    return { dump, cached: p.cached };
  };

  it('builds the same rows when every state is dropped from the cache at once: dropped states are read back', () => {
    const roomy = project('roomy', 1_000_000);
    const starved = project('starved', 1);
    expect(roomy.cached.nodes).toBe(3);
    expect(starved.cached.nodes).toBe(0);
    expect(starved.dump.jobs.map((j) => j.status)).toEqual(['running', 'running', 'running']);
    expect(starved.dump).toEqual(roomy.dump);
  });
});
