import { describe, expect, it } from 'vitest';
import { startHetznerSimulator, type HetznerSimulator, type HetznerSimulatorOptions } from '../../src/simulators/hetzner/start-simulator.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { provision, requestsSeen } from './provision-driver.ts';
import { providerFor } from './simulator-fixture.ts';

const publicKey = generateOpenSshEd25519('pressluft').publicKey;

const withSim = async <T>(options: HetznerSimulatorOptions, run: (sim: HetznerSimulator) => Promise<T>): Promise<T> => {
  const sim = await startHetznerSimulator(options);
  try {
    return await run(sim);
  } finally {
    await sim.close();
  }
};

describe('provisions under rate limiting', () => {
  it('a 429 on the create POST is followed by the POST alone, not by the lookups again (the livelock of issue 13)', async () => {
    // Every 3rd request refused, one provision in sequence:
    // 1 GET ssh_keys, 2 POST ssh_keys, 3 GET servers (label) 429, 4 GET label, 5 GET name, 6 POST 429, 7 POST.
    // Before the fix 7–9 repeated label, name and a refused POST forever.
    await withSim({ actionDurationMs: 0, refuseEveryNth: 3 }, async (sim) => {
      const p = providerFor(sim);
      const r = await provision(p, publicKey, 'n1', { pollMs: 20 });
      const c = sim.admin.snapshot().counters;
      expect(r.server.status).toBe('running');
      expect(c.calls.list_servers).toBe(2);
      expect(c.calls.create_server).toBe(1);
      expect(c.serversCreated).toBe(1);
      expect(c.rateLimited).toBeGreaterThanOrEqual(2);
      expect(r.stepRetries).toBe(0);
    });
  });

  for (const n of [2, 3, 4]) {
    it(`with every ${n}-th request refused, all 8 concurrent provisions finish with one server each`, async () => {
      await withSim({ actionDurationMs: 300, refuseEveryNth: n }, async (sim) => {
        const p = providerFor(sim);
        const nodes = Array.from({ length: 8 }, (_, i) => `n${n}-${i}`);
        const results = await Promise.all(nodes.map((id) => provision(p, publicKey, id, { pollMs: 200, deadlineMs: 50_000 })));
        const snap = sim.admin.snapshot();
        expect(results.every((r) => r.server.status === 'running' && r.server.ipv4 === '127.0.0.1')).toBe(true);
        expect(snap.counters.serversCreated).toBe(nodes.length);
        expect(snap.servers.map((s) => s.labels['pressluft/node-id']).sort()).toEqual([...nodes].sort());
        const total = requestsSeen(sim);
        console.log(`refuse every ${n}-th: ${nodes.length} provisions, ${total} requests (${snap.counters.rateLimited} refused with 429), ` +
          `${(total / nodes.length).toFixed(2)} requests per provision, step retries ${results.reduce((a, r) => a + r.stepRetries, 0)}, calls ${JSON.stringify(snap.counters.calls)}`);
        expect(snap.counters.rateLimited).toBeGreaterThan(0);
      });
    }, 60_000);
  }

  it('a drained budget (bucket 20, 1 request/s) and 50 provisions: none starved, and no request the budget knew would be refused', async () => {
    await withSim({ actionDurationMs: 1_000, rateLimit: { limit: 20, refillPerSecond: 1 } }, async (sim) => {
      const p = providerFor(sim);
      const nodes = Array.from({ length: 50 }, (_, i) => `d${i}`);
      const started = Date.now();
      const results = await Promise.all(nodes.map((id) => provision(p, publicKey, id, { knownAbsent: true, pollMs: 1_000, deadlineMs: 130_000 })));
      const snap = sim.admin.snapshot();
      const total = requestsSeen(sim);
      const slowest = Math.max(...results.map((r) => r.ms));
      console.log(`drained budget: 50 provisions in ${Date.now() - started} ms, ${total} requests, ${snap.counters.rateLimited} refused with 429, ` +
        `${(total / nodes.length).toFixed(2)} requests per provision, slowest provision ${slowest} ms, calls ${JSON.stringify(snap.counters.calls)}`);
      expect(results).toHaveLength(50);
      expect(snap.counters.serversCreated).toBe(50);
      expect(snap.counters.rateLimited).toBe(0);
      // 1 key lookup + 1 key POST + 50 creates, and the polls of many nodes share each list request.
      expect(total / nodes.length).toBeLessThanOrEqual(2);
      expect(snap.counters.calls.get_server ?? 0).toBe(0);
    });
  }, 150_000);
});
