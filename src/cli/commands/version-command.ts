import { z } from 'zod';
import { connectApi } from '../api-client.ts';
import { parseCommandArgs } from '../cli-options.ts';
import { createOutput, type Streams } from '../output.ts';

const USAGE = `usage: pressluft version [--url URL] [--token-file FILE | --token-stdin] [--json]
  the running control plane's version and playbook bundle digest: the DIGEST that
  \`node create|provision --expect-playbook DIGEST\` must carry`;

export const runVersionCommand = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  const { global } = parseCommandArgs(argv, {}, z.object({ _: z.tuple([]) }), USAGE);
  const v = await (await connectApi(global, env)).get<{ version: string; playbookDigest: string }>('/v1/version');
  createOutput(streams, global.json).result(v, () => `pressluft ${v.version}\nplaybook bundle ${v.playbookDigest}`);
  return 0;
};
