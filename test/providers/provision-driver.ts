import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError, type ProviderPort, type ProviderServer } from '../../src/providers/provider-port.ts';
import type { HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { actionFailedError, classifyActions } from './action-progress.ts';
import { specFor } from './simulator-fixture.ts';

/**
 * Test support: the saga's provider steps in order (ensureSshKey → createServer → getActions until
 * done → getServer), each retried the way the saga retries a step: a retryable ProviderError waits its
 * retryAfterMs (at least 100 ms, as src/sagas/step-context.ts does) and runs the whole step again.
 */
export interface ProvisionResult {
  server: ProviderServer;
  stepRetries: number;
  ms: number;
}

export const provision = async (
  provider: ProviderPort,
  publicKey: string,
  nodeId: string,
  opts: { knownAbsent?: boolean; pollMs?: number; deadlineMs?: number } = {},
): Promise<ProvisionResult> => {
  const started = Date.now();
  let stepRetries = 0;
  const step = async <T>(run: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await run();
      } catch (e) {
        if (!(e instanceof ProviderError) || !e.retryable) throw e;
        if (Date.now() - started > (opts.deadlineMs ?? 120_000)) throw new Error(`provision ${nodeId} starved: ${e.code} after ${stepRetries} step retries`);
        stepRetries += 1;
        await sleep(Math.max(e.retryAfterMs ?? 100, 100));
      }
    }
  };
  const key = await step(() => provider.ensureSshKey(publicKey));
  // The saga's first attempt has no earlier intent; a retried step may follow an uncertain POST, so it looks up.
  let firstAttempt = opts.knownAbsent === true;
  const created = await step(() => {
    const knownAbsent = firstAttempt;
    firstAttempt = false;
    return provider.createServer(specFor(nodeId, key.keyId, { knownAbsent }));
  });
  for (;;) {
    const c = classifyActions(await step(() => provider.getActions(created.actionIds)));
    if (c.outcome === 'failed') throw actionFailedError(c.failed[0]!);
    if (c.outcome === 'done') break;
    await sleep(opts.pollMs ?? 500);
  }
  const server = await step(() => provider.getServer(created.serverId));
  return { server, stepRetries, ms: Date.now() - started };
};

/** Every request the simulator saw, served or refused. */
export const requestsSeen = (sim: HetznerSimulator): number => {
  const c = sim.admin.snapshot().counters;
  return Object.values(c.calls).reduce((a, b) => a + b, 0) + c.rateLimited + c.unauthorized;
};
