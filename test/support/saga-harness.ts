import { createServer, type Server } from 'node:net';
import { handleCommand } from '../../src/commands/command-handler.ts';
import { NodeRepository } from '../../src/commands/node-repository.ts';
import type { JobPolicy } from '../../src/events/node-events.ts';
import type { NodeState } from '../../src/events/node-state.ts';
import type { EventStore } from '../../src/eventstore/event-store.ts';
import { startHetznerSimulator, type HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { ctx, policy, spec } from './node-fixtures.ts';

/** A TCP listener on loopback that stands in for a node's sshd, so the saga's port probe succeeds. */
export const fakeSshd = async (): Promise<{ port: number; close(): Promise<void> }> => {
  const server: Server = createServer((sock) => sock.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { port, close: () => new Promise((r) => server.close(() => r())) };
};

export const startSimulator = (actionDurationMs = 0): Promise<HetznerSimulator> => startHetznerSimulator({ actionDurationMs });

export const requestProvision = async (repo: NodeRepository, nodeId: string, o: { sshPort: number; policy?: Partial<JobPolicy> }) =>
  handleCommand(
    repo,
    nodeId,
    { type: 'RequestProvision', nodeId, jobId: `${nodeId}-job`, spec: spec({ name: nodeId.replace(/_/g, '-').toLowerCase(), sshPort: o.sshPort }), policy: policy(o.policy) },
    ctx({ now: new Date().toISOString(), messageId: `provision:${nodeId}-job` }),
  );

/** Polls the node's stream until its job is terminal, or throws after the timeout. */
export const waitTerminal = async (store: EventStore, nodeId: string, timeoutMs: number): Promise<NodeState> => {
  const repo = new NodeRepository(store);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // The server may be restarting under the test: a failed read is retried until the deadline.
    const loaded = await repo.load(nodeId).catch(() => null);
    if (!loaded) {
      if (Date.now() > deadline) throw new Error(`node ${nodeId}: event store unreachable for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const { state } = loaded;
    const job = state.jobs[`${nodeId}-job`];
    if (job && !['queued', 'running'].includes(job.status)) return state;
    if (Date.now() > deadline) throw new Error(`node ${nodeId} not terminal after ${timeoutMs} ms: job ${job?.status} step ${JSON.stringify(job?.progress)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

export const eventTypes = async (repo: NodeRepository, nodeId: string): Promise<string[]> => (await repo.history(nodeId)).map((e) => e.type);
