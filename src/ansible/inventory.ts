import { z } from 'zod';
import { hostKeySchema } from '../events/node-events.ts';
import type { RunTarget } from './runner-port.ts';

// Values end up unquoted in an INI line; the shapes below leave no room for spaces or '='.
const hostName = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ipv6 = /^[0-9A-Fa-f:.]+$/;

export const runTarget = z.object({
  host: z.string().refine((h) => hostName.test(h) || (h.includes(':') && ipv6.test(h)), 'not a host name or IP address'),
  port: z.number().int().min(1).max(65535),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
  connection: z.enum(['ssh', 'local']).default('ssh'),
  hostKey: hostKeySchema.optional(),
});

/**
 * Extra-vars may not steer the connection: the inventory (from the read model) owns it. Their
 * names are identifiers; their values are data, written !unsafe (unsafe-vars.ts).
 */
export const extraVars = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'extra-var names must be identifiers'), z.unknown())
  .refine((vars) => !Object.keys(vars).some((k) => k.startsWith('ansible_')), 'extra-vars may not set ansible_* variables');

export const INVENTORY_HOST = 'node';

/**
 * One host, one group: the run's whole inventory, written to the per-job temp dir. No key file:
 * the key lives in the run's ssh-agent only (ssh-agent.ts).
 */
export const renderInventory = (target: RunTarget): string => {
  const t = runTarget.parse(target);
  const vars = [
    `ansible_host=${t.host}`,
    `ansible_port=${t.port}`,
    `ansible_user=${t.user}`,
    `ansible_connection=${t.connection}`,
  ];
  return `[pressluft_nodes]\n${INVENTORY_HOST} ${vars.join(' ')}\n`;
};
