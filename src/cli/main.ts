import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.ts';
import { runHcloudSim, runTestNode } from './commands/external-commands.ts';
import { runEventsCommand } from './commands/events-command.ts';
import { JOB_USAGE, runJobCommand } from './commands/job-command.ts';
import { NODE_USAGE, runNodeCommand } from './commands/node-command.ts';
import { PROJECTIONS_USAGE, runProjectionsCommand } from './commands/projections-command.ts';
import { runServeCommand } from './commands/serve-command.ts';
import { runVersionCommand } from './commands/version-command.ts';
import type { Streams } from './output.ts';

const USAGE = `usage: pressluft <command>

  serve                          run the control plane (what npm start runs)
  node create|list|get|provision|trust-host-key|history|state
  job get|log|watch|cancel
  version                        the control plane's version and playbook bundle digest (for --expect-playbook)
  projections status|rebuild
  events show <position>         one stored message, decoded or redacted
  hcloud-sim [flags]             run the Hetzner API simulator
  test-node up|down|status       the disposable test node (scripts/test-node.sh)

API commands take --url (PRESSLUFT_URL, default http://127.0.0.1:8080) and --json. The
token comes from --token-file FILE, --token-stdin, PRESSLUFT_API_TOKEN, else
<PRESSLUFT_DATA_DIR>/api-token; never from the command line.

${NODE_USAGE}

${JOB_USAGE}

${PROJECTIONS_USAGE}`;

/** Runs one CLI invocation; null means the command keeps running (a server) and sets no exit code. */
export const runCli = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number | null> => {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  try {
    switch (command) {
      case 'serve':
        return await runServeCommand(streams, env);
      case 'node':
        return await runNodeCommand(rest, streams, env);
      case 'job':
        return await runJobCommand(rest, streams, env);
      case 'projections':
        return await runProjectionsCommand(rest, streams, env);
      case 'events':
        return await runEventsCommand(rest, streams, env);
      case 'version':
        return await runVersionCommand(rest, streams, env);
      case 'hcloud-sim':
        return await runHcloudSim(rest);
      case 'test-node':
        return await runTestNode(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        streams.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new CliError('usage', `unknown command: ${command}\n${USAGE}`, 2);
    }
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    if (e.code === 'help') {
      streams.stdout.write(`${e.message}\n`);
      return 0;
    }
    if (json) streams.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } }, null, 2)}\n`);
    streams.stderr.write(`error [${e.code}]: ${e.message}\n`);
    const issues = (e.details?.issues ?? []) as Array<{ in?: string; path?: string; message?: string }>;
    for (const i of issues) streams.stderr.write(`  ${i.in ?? ''}${i.path ?? ''}: ${i.message ?? ''}\n`);
    return e.exitCode;
  }
};

if (process.argv[1] && [fileURLToPath(import.meta.url), fileURLToPath(new URL('../../bin/pressluft.js', import.meta.url))].includes(realpathSync(process.argv[1]))) {
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, process.env).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (e: unknown) => {
      // Not a CliError: a bug. Print it without secrets-bearing context and fail.
      process.stderr.write(`error [internal]: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
