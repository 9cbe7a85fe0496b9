import type { CommandContext } from '../../src/commands/command-handler.ts';
import type { JobPolicy, NodeSpec } from '../../src/events/node-events.ts';

export const spec = (over: Partial<NodeSpec> = {}): NodeSpec => ({
  name: 'web-1',
  provider: 'hetzner',
  serverType: 'cx22',
  location: 'fsn1',
  image: 'ubuntu-24.04',
  sshUser: 'root',
  sshPort: 22,
  ...over,
});

export const policy = (over: Partial<JobPolicy> = {}): JobPolicy => ({
  maxAttempts: 3,
  backoffMs: [60_000, 300_000, 900_000],
  jobTimeoutMs: 1_800_000,
  ansibleTimeoutMs: 1_500_000,
  actionTimeoutMs: 600_000,
  ...over,
});

let counter = 0;
export const ctx = (over: Partial<CommandContext> = {}): CommandContext => ({
  actor: 'api:test',
  causationId: 'cmd-test',
  now: '2026-11-26T12:00:00.000Z',
  messageId: `msg-${process.pid}-${++counter}`,
  ...over,
});
