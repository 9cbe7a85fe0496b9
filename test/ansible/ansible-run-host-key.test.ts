import { describe, expect, it } from 'vitest';
import type { RunRequest, RunResult } from '../../src/ansible/runner-port.ts';
import { runAnsible } from '../../src/sagas/ansible-run.ts';
import type { StepContext } from '../../src/sagas/step-context.ts';

// The saga's ansible step hands the runner the node's recorded host key, and refuses to run over
// ssh without one (no trust on first use). A pure check of that decision: the step context is an
// in-process stand-in that records what the step asked for; the real path is in host-key-trust.test.ts.
const KEY = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKz9SgW52U5cr2vXaVAFEsOfAvaQCThXmk2f7uTO9sY6', fingerprint: 'SHA256:u/lwIe4se3DoHmH65cZJcehf6AN1YCOAaf7ewzbY0l0' };
const STEP = { kind: 'runAnsible' as const, jobId: 'j1', attempt: 1, host: '203.0.113.7', port: 22, user: 'root', timeoutMs: 60_000 };
const OK: RunResult = { ok: true, exitCode: 0, errorCode: null, retryable: false, recap: { ok: 1, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 }, durationMs: 1, outputTail: '' };

const context = (connection: 'ssh' | 'local', hostKey: typeof KEY | null) => {
  const asked: { failure?: unknown[]; run?: RunRequest; recorded?: unknown } = {};
  const ctx = {
    nodeId: 'n1',
    seen: { version: 1 },
    state: { spec: { name: 'web-1', sshPort: 22 }, hostKey: hostKey && { ...hostKey, source: 'created' }, jobs: { j1: { progress: { ready: { ipv4: '203.0.113.7' } } } } },
    deps: {
      targetConnection: connection,
      running: new Set(),
      leaseChecks: new Map(),
      watchIntervalMs: 60_000,
      playbook: 'p.yml',
      ansibleVars: {},
      keyPair: { privateKey: 'k' },
      store: { publishProgress: () => undefined },
      runner: {
        run: async (req: RunRequest) => {
          asked.run = req;
          return OK;
        },
      },
    },
    boundary: () => undefined,
    isoNow: () => '2026-01-01T00:00:00.000Z',
    recordFailure: async (...args: unknown[]) => {
      asked.failure = args;
      return { kind: 'done' };
    },
    record: async (cmd: unknown) => {
      asked.recorded = cmd;
      return { kind: 'done' };
    },
  } as unknown as StepContext;
  return { ctx, asked };
};

describe('the ansible step and host keys', () => {
  it('passes the recorded host key to an ssh run', async () => {
    const { ctx, asked } = context('ssh', KEY);
    await runAnsible(ctx, STEP);
    expect(asked.run?.node).toMatchObject({ host: '203.0.113.7', port: 22, connection: 'ssh', hostKey: KEY });
    expect(asked.failure).toBeUndefined();
  });

  it('refuses an ssh run for a node with no recorded host key, without starting the runner', async () => {
    const { ctx, asked } = context('ssh', null);
    await runAnsible(ctx, STEP);
    expect(asked.run).toBeUndefined();
    expect(asked.failure?.slice(1)).toEqual(['HOST_KEY_UNTRUSTED', expect.stringContaining('no recorded host key'), false]);
  });

  it('needs no host key for a local run', async () => {
    const { ctx, asked } = context('local', null);
    await runAnsible(ctx, STEP);
    expect(asked.run?.node).toMatchObject({ connection: 'local' });
    expect(asked.run?.node.hostKey).toBeUndefined();
  });
});
