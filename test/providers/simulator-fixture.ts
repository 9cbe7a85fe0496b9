import { Writable } from 'node:stream';
import { afterEach, beforeEach } from 'vitest';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import { classifyActions, actionFailedError, assertActionsWithin } from './action-progress.ts';
import { createHetznerProvider, type HetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import { startHetznerSimulator, type HetznerSimulator, type HetznerSimulatorOptions } from '../../src/simulators/hetzner/start-simulator.ts';
import type { ProviderPort, ServerSpec } from '../../src/providers/provider-port.ts';

/** A fresh simulator on 127.0.0.1 per test; the only endpoint any provider test talks to. */
export const useSimulator = (options: HetznerSimulatorOptions = {}): (() => HetznerSimulator) => {
  let sim: HetznerSimulator | undefined;
  beforeEach(async () => {
    sim = await startHetznerSimulator({ actionDurationMs: 0, ...options });
  });
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });
  return () => {
    if (!sim) throw new Error('simulator not started');
    return sim;
  };
};

/** Pino writing into memory, so tests can read every line the code logged. */
export const captureLogger = (): { logger: Logger; text: () => string } => {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger('debug', sink), text: () => chunks.join('') };
};

export const providerFor = (sim: HetznerSimulator, logger: Logger = captureLogger().logger, overrides: { token?: string; timeoutMs?: number } = {}): HetznerProvider =>
  createHetznerProvider({ endpoint: sim.url, token: overrides.token ?? sim.token, timeoutMs: overrides.timeoutMs ?? 5_000, logger });

export const specFor = (nodeId: string, sshKeyId: string, over: Partial<ServerSpec> = {}): ServerSpec => ({
  nodeId,
  jobId: 'job-1',
  name: `node-${nodeId}`,
  serverType: 'cx22',
  location: 'fsn1',
  image: 'debian-12',
  sshKeyId,
  ...over,
});

/**
 * The saga's wait loop in miniature: poll, classify, give up at the limit.
 * It lives in the test because the saga, not the adapter, owns the loop.
 */
export const waitForActions = async (provider: ProviderPort, ids: string[], limitMs: number, pollMs = 20): Promise<void> => {
  const started = Date.now();
  for (;;) {
    const c = classifyActions(await provider.getActions(ids));
    if (c.outcome === 'failed') throw actionFailedError(c.failed[0]!);
    if (c.outcome === 'done') return;
    assertActionsWithin(started, Date.now(), limitMs, c.pending.map((a) => a.actionId));
    await new Promise((r) => setTimeout(r, pollMs));
  }
};

/** Spends the simulator's rate-limit bucket with raw calls until it answers 429. */
export const drainRateLimit = async (sim: HetznerSimulator): Promise<void> => {
  for (let i = 0; i < 1_000; i++) {
    const res = await fetch(`${sim.url}/servers`, { headers: { authorization: `Bearer ${sim.token}` } });
    await res.arrayBuffer();
    if (res.status === 429) return;
  }
  throw new Error('the rate limit never engaged');
};

/** Resolves to the rejection, so tests can assert on every field of the error. */
export const rejectionOf = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
};
