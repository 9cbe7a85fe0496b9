import { z } from 'zod';

const counts = z.object({
  ok: z.number().int().nonnegative(),
  changed: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  unreachable: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
  rescued: z.number().int().nonnegative(),
  ignored: z.number().int().nonnegative(),
});

/** One JSON line from ansible/callback_plugins/pressluft_progress.py. */
export const progressEvent = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('task'),
    task: z.string(),
    host: z.string(),
    status: z.enum(['ok', 'changed', 'failed', 'ignored', 'skipped', 'unreachable']),
    handler: z.boolean(),
    /** The module's message, for failed and unreachable results only; not yet redacted. */
    message: z.string().optional(),
  }),
  /** At each play's start: its task count, as `ansible-playbook --list-tasks` would list them. */
  z.object({ event: z.literal('play'), tasks: z.number().int().nonnegative() }),
  /** A task (or handler) begins; names the task a timeout or cancel interrupted. */
  z.object({ event: z.literal('start'), task: z.string() }),
  z.object({ event: z.literal('stats'), hosts: z.record(z.string(), counts) }),
]);

export type ProgressEvent = z.infer<typeof progressEvent>;

/** null for a line that is not valid JSON or not a known event; the caller logs and skips it. */
export const parseProgressLine = (line: string): ProgressEvent | null => {
  try {
    const parsed = progressEvent.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
};
