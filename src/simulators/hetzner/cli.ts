import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startHetznerSimulator, type HetznerSimulator } from './start-simulator.ts';

const USAGE = `usage: pressluft hcloud-sim [--host 127.0.0.1] [--port 4010] [--token T]
       [--action-duration-ms 1000 | --actions-never-finish] [--rate-limit 3600] [--rate-refill-per-second 1000]
       [--refuse-every-nth N] [--server-ipv4 127.0.0.1]`;

const int = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new Error(`--${name} must be a non-negative integer\n${USAGE}`);
  return Number(raw);
};

/**
 * Starts the simulator from command-line flags and keeps it up until SIGINT/SIGTERM.
 * Prints the endpoint and token as HCLOUD_* exports so a shell can point Pressluft at it.
 */
export const runHetznerSimulatorCli = async (
  argv: readonly string[],
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<HetznerSimulator> => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      'action-duration-ms': { type: 'string' },
      'actions-never-finish': { type: 'boolean' },
      'rate-limit': { type: 'string' },
      'rate-refill-per-second': { type: 'string' },
      'refuse-every-nth': { type: 'string' },
      'server-ipv4': { type: 'string' },
    },
    strict: true,
  });
  const limit = int('rate-limit', values['rate-limit']);
  const refill = int('rate-refill-per-second', values['rate-refill-per-second']);
  const sim = await startHetznerSimulator({
    host: values.host,
    port: int('port', values.port) ?? 4010,
    token: values.token,
    actionDurationMs: values['actions-never-finish'] ? null : int('action-duration-ms', values['action-duration-ms']),
    rateLimit: limit === undefined && refill === undefined ? undefined : { limit: limit ?? 3_600, refillPerSecond: refill ?? 1 },
    refuseEveryNth: int('refuse-every-nth', values['refuse-every-nth']) ?? null,
    serverIpv4: values['server-ipv4'],
  });
  out(`Hetzner API simulator listening; admin API at ${sim.origin}/__admin/state`);
  out(`export HCLOUD_ENDPOINT=${sim.url}`);
  out(`export HCLOUD_TOKEN=${sim.token}`);
  const stop = () => void sim.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    ...sim,
    close: async () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await sim.close();
    },
  };
};

// Standalone: `npx tsx src/simulators/hetzner/cli.ts --port 4010`.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runHetznerSimulatorCli(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
