import { startControlPlane } from '../../app/control-plane.ts';
import { ConfigError, loadConfig } from '../../config/config.ts';
import { CliError } from '../cli-error.ts';
import type { Streams } from '../output.ts';

/**
 * `pressluft serve` (what `npm start` runs): the control plane until SIGINT or SIGTERM, then a
 * clean stop. A bad configuration exits 2 with the CONFIG_INVALID message naming the variable.
 */
export const runServeCommand = async (streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  let config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.code, e.message, 2);
    throw e;
  }
  const cp = await startControlPlane(config);
  streams.stdout.write(`pressluft: API at ${cp.url ?? '(none: worker role)'}; data dir ${config.dataDir}; stop with Ctrl-C\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  cp.logger.info({ signal }, 'stopping');
  await cp.stop();
  return 0;
};
