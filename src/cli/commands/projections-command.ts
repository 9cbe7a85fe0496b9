import { z } from 'zod';
import { connectApi } from '../api-client.ts';
import { CliError, usageError } from '../cli-error.ts';
import { parseCommandArgs } from '../cli-options.ts';
import { createOutput, table, type Streams } from '../output.ts';

export const PROJECTIONS_USAGE = `usage: pressluft projections status
       pressluft projections rebuild [--name nodes]
common: [--url URL] [--token-file FILE | --token-stdin] [--json]`;

interface Status {
  name: string;
  checkpoint: number;
  lastPosition: number;
  lag: number;
  rebuilding: boolean;
  error: string | null;
}
interface Report {
  name: string;
  replayed: number;
  lagBefore: number;
  lagAfter: number;
  durationMs: number;
}

export const runProjectionsCommand = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'status': {
      const { global } = parseCommandArgs(rest, {}, z.object({ _: z.tuple([]) }), PROJECTIONS_USAGE);
      const res = await (await connectApi(global, env)).get<{ projections: Status[] }>('/v1/projections');
      createOutput(streams, global.json).result(res, () =>
        table([
          ['NAME', 'CHECKPOINT', 'LOG END', 'LAG', 'REBUILDING', 'ERROR'],
          ...res.projections.map((p) => [p.name, String(p.checkpoint), String(p.lastPosition), String(p.lag), p.rebuilding ? 'yes' : 'no', p.error ?? '-']),
        ]),
      );
      return 0;
    }
    case 'rebuild': {
      const { global, values: v } = parseCommandArgs(rest, { name: { type: 'string' } }, z.object({ _: z.tuple([]), name: z.enum(['nodes']).default('nodes') }), PROJECTIONS_USAGE);
      const api = await connectApi(global, env);
      const out = createOutput(streams, global.json);
      let report: Report | null = null;
      // Progress goes to stderr, so that --json leaves stdout to the report alone.
      for await (const e of api.stream('POST', '/v1/projections/rebuild', { name: v.name })) {
        if (e.event === 'progress') {
          const p = JSON.parse(e.data) as { position: number; target: number };
          out.error(`rebuilding ${v.name}: replayed to position ${p.position} of ${p.target}`);
        } else if (e.event === 'report') report = JSON.parse(e.data) as Report;
        else if (e.event === 'error') throw new CliError('internal', 'the rebuild failed on the server; the live projection is unchanged');
      }
      if (!report) throw new CliError('stream_failed', 'the rebuild stream ended without a report');
      const r = report;
      out.result(r, () => `rebuilt ${r.name} and swapped it in: replayed ${r.replayed} decisions in ${r.durationMs} ms; lag before ${r.lagBefore}, after ${r.lagAfter}`);
      return 0;
    }
    default:
      throw usageError(sub ? `unknown projections command: ${sub}` : 'missing projections command', PROJECTIONS_USAGE);
  }
};
