import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { runHetznerSimulatorCli } from '../../simulators/hetzner/cli.ts';
import { usageError } from '../cli-error.ts';

const TEST_NODE_SCRIPT = fileURLToPath(new URL('../../../scripts/test-node.sh', import.meta.url));
const TEST_NODE_USAGE = 'usage: pressluft test-node up [PUBKEY_FILE] | down | status';

/** `pressluft hcloud-sim …`: the Hetzner simulator in the foreground until SIGINT/SIGTERM. */
export const runHcloudSim = async (argv: readonly string[]): Promise<null> => {
  await runHetznerSimulatorCli(argv);
  // The simulator keeps the process alive and exits on its own signal handlers.
  return null;
};

/** `pressluft test-node up|down|status`: runs scripts/test-node.sh with our stdio. */
export const runTestNode = async (argv: readonly string[]): Promise<number> => {
  if (!['up', 'down', 'status'].includes(argv[0] ?? '')) throw usageError('test-node needs up, down or status', TEST_NODE_USAGE);
  const r = await execa('bash', [TEST_NODE_SCRIPT, ...argv], { stdio: 'inherit', reject: false });
  return r.exitCode ?? 1;
};
