import { startControlPlane } from '../../app/control-plane.ts';
import { ConfigError, loadConfig } from '../../config/config.ts';
import { isAppError } from '../../errors/app-error.ts';
import { CliError } from '../cli-error.ts';
import type { Streams } from '../output.ts';

/** SIGTERM finishes within this, always: a service manager's stop timeout is longer. */
export const SHUTDOWN_DEADLINE_MS = 15_000;
/** Exit status when a core part died (the embedded nats-server): the service manager restarts us (ADR 0030). */
const EXIT_CORE_DIED = 70;

/**
 * `pressluft serve` (what `npm start` runs): the control plane until SIGINT or SIGTERM, then a
 * clean stop. A bad configuration exits 2 with the CONFIG_INVALID message naming the variable;
 * a refused start (e.g. EVENT_LOG_BEHIND_READ_MODEL) exits 1 with its code; a core part dying
 * exits 70 after a clean stop.
 */
export const runServeCommand = async (streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  let config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.code, e.message, 2);
    throw e;
  }
  let cp;
  try {
    cp = await startControlPlane(config);
  } catch (e) {
    if (isAppError(e)) throw new CliError(e.code, e.message, 1, e.details);
    throw e;
  }
  streams.stdout.write(`pressluft: API at ${cp.url ?? '(none: worker role)'}; data dir ${config.dataDir}; stop with Ctrl-C\n`);
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const why = await new Promise<{ signal: NodeJS.Signals } | { fatal: Error }>((resolve) => {
    onSignal = (signal) => resolve({ signal });
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void cp.fatal.then((fatal) => resolve({ fatal }));
  });
  // A second SIGTERM or SIGINT during the stop takes the default action: exit now (nats-server dies with us).
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  cp.logger.info(why, 'stopping');
  const deadline = setTimeout(() => {
    // A step that hangs (a drain on a dead connection, a child that ignores SIGTERM) must not keep the service alive.
    cp.logger.fatal({ step: cp.shutdownStep, deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time; exiting');
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  await cp.stop();
  clearTimeout(deadline);
  const code = 'fatal' in why ? EXIT_CORE_DIED : 0;
  // Everything is stopped. A handle that is still open (a client reconnecting to a dead server)
  // must not keep the service alive: unref'd, this fires only if something else holds the loop.
  setTimeout(() => {
    cp.logger.warn({ exitCode: code }, 'a handle stayed open after the stop; exiting');
    process.exit(code);
  }, 1000).unref();
  return code;
};
