import { z } from 'zod';
import type { StoredMessageView } from '../../api/api-schemas.ts';
import { connectApi } from '../api-client.ts';
import { usageError } from '../cli-error.ts';
import { parseCommandArgs } from '../cli-options.ts';
import { describeEvent } from '../event-description.ts';
import { createOutput, type Streams } from '../output.ts';

export const EVENTS_USAGE = `usage: pressluft events show POSITION
common: [--url URL] [--token-file FILE | --token-stdin] [--json]`;

const showArgs = z.object({ _: z.tuple([z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER)]) });

/** An operator's view of one stored message: where it is, its headers, then its events or why it does not decode. */
const render = (m: StoredMessageView): string => {
  const head = [
    `position   ${m.position}`,
    `subject    ${m.subject} (node ${m.nodeId})`,
    `stored at  ${m.storedAt}`,
    ...Object.entries(m.headers).map(([k, vs]) => `header     ${k}: ${vs.join(', ')}`),
  ];
  if (m.events) {
    const events = m.events.map((e) => `  ${e.type} v${e.version} by ${e.actor} at ${e.occurredAt} (job ${e.correlationId}): ${describeEvent(e)}\n    ${JSON.stringify(e.data)}`);
    return [...head, `decodes    yes, ${m.events.length} event(s)`, ...events].join('\n');
  }
  const bad = m.invalid!;
  const cut = bad.truncated ? `, first ${bad.text.length} characters shown` : '';
  return [...head, `decodes    NO: ${bad.reason}`, `text       (${bad.bytes} bytes, redacted${cut})`, bad.text].join('\n');
};

export const runEventsCommand = async (argv: readonly string[], streams: Streams, env: NodeJS.ProcessEnv): Promise<number> => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'show': {
      const { global, values: v } = parseCommandArgs(rest, {}, showArgs, EVENTS_USAGE);
      const message = await (await connectApi(global, env)).get<StoredMessageView>(`/v1/events/${v._[0]}`);
      createOutput(streams, global.json).result(message, () => render(message));
      return 0;
    }
    default:
      throw usageError(sub ? `unknown events command: ${sub}` : 'missing events command', EVENTS_USAGE);
  }
};
