import { z } from 'zod';

/** Every API call the simulator serves, named as the admin API and the counters name it. */
export const operationSchema = z.enum([
  'list_ssh_keys', 'create_ssh_key', 'delete_ssh_key',
  'list_servers', 'get_server', 'create_server', 'delete_server', 'list_server_actions',
  'list_actions', 'get_action',
]);
export type Operation = z.infer<typeof operationSchema>;

/**
 * What happens to the next `count` calls of `operation`:
 * - `error`: answer with this status and Hetzner error code;
 * - `drop`: destroy the socket without answering;
 * - `delay`: wait, then serve normally (to trip client timeouts).
 * With `applyFirst` the call takes effect before the error or drop, as when a create succeeded
 * but its answer was lost, or a concurrent worker won a race.
 */
export const faultSchema = z.object({
  operation: operationSchema,
  count: z.number().int().min(1).default(1),
  applyFirst: z.boolean().default(false),
  effect: z.discriminatedUnion('type', [
    z.object({
      type: z.literal('error'),
      status: z.number().int().min(400).max(599),
      code: z.string().min(1),
      message: z.string().default('injected by the simulator'),
      details: z.unknown().optional(),
    }),
    z.object({ type: z.literal('drop') }),
    z.object({ type: z.literal('delay'), ms: z.number().int().min(0).max(600_000) }),
  ]),
});
export type FaultInput = z.input<typeof faultSchema>;
export type Fault = z.infer<typeof faultSchema>;
export type FaultEffect = Fault['effect'];

/** Queued faults, consumed in order per operation. */
export class FaultQueue {
  #faults: { fault: Fault; remaining: number }[] = [];

  add(input: FaultInput): void {
    const fault = faultSchema.parse(input);
    this.#faults.push({ fault, remaining: fault.count });
  }

  take(op: Operation): Fault | null {
    const entry = this.#faults.find((f) => f.fault.operation === op && f.remaining > 0);
    if (!entry) return null;
    entry.remaining -= 1;
    this.#faults = this.#faults.filter((f) => f.remaining > 0);
    return entry.fault;
  }

  clear(): void {
    this.#faults = [];
  }
}
