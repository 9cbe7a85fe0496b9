import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { createSimulatorAdmin, rateLimitConfigSchema, refuseEveryNthSchema, registerAdminRoutes, type SimulatorAdmin } from './admin-routes.ts';
import { RateLimiter } from './rate-limiter.ts';
import { buildSimulatorApp } from './simulator-app.ts';
import { SimulatorState } from './simulator-state.ts';

/** Network safety: the simulator and the addresses it hands out never leave 127.0.0.0/8. */
const isLoopbackV4 = (ip: string): boolean => isIP(ip) === 4 && ip.split('.')[0] === '127';
const loopbackHost = z.string().refine((h) => isLoopbackV4(h) || h === '::1' || h === 'localhost', 'host must be a loopback address');

export const simulatorOptionsSchema = z.object({
  host: loopbackHost.default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  /** The bearer token clients must send; random when omitted. */
  token: z.string().min(1).optional(),
  /** How long each action runs (start_server runs twice as long); 0 = instant, null = never finishes. */
  actionDurationMs: z.number().int().min(0).nullable().default(1_000),
  /** Generous by default so that ordinary tests never see a 429. */
  rateLimit: rateLimitConfigSchema.default({ limit: 3_600, refillPerSecond: 1_000 }),
  /** Fault from the start: every N-th API request is answered 429 (admin: refuseEveryNth). */
  refuseEveryNth: refuseEveryNthSchema.default(null),
  /** The public IPv4 every server gets; must stay inside 127.0.0.0/8. */
  serverIpv4: z.string().refine(isLoopbackV4, 'serverIpv4 must be inside 127.0.0.0/8').default('127.0.0.1'),
});
export type HetznerSimulatorOptions = z.input<typeof simulatorOptionsSchema> & {
  /** Milliseconds since the epoch; action progress and rate-limit refill follow it. Default Date.now. */
  clock?: () => number;
};

export interface HetznerSimulator {
  /** Base URL including /v1: pass it as HCLOUD_ENDPOINT. */
  url: string;
  /** Where /__admin/* lives. */
  origin: string;
  token: string;
  admin: SimulatorAdmin;
  close(): Promise<void>;
}

export const startHetznerSimulator = async (options: HetznerSimulatorOptions = {}): Promise<HetznerSimulator> => {
  const o = simulatorOptionsSchema.parse(options);
  const token = o.token ?? `sim-${randomBytes(16).toString('hex')}`;
  const now = options.clock ?? (() => Date.now());
  const state = new SimulatorState({ actionDurationMs: o.actionDurationMs, serverIpv4: o.serverIpv4, now });
  const rateLimiter = new RateLimiter(o.rateLimit, now(), o.refuseEveryNth);
  const app = buildSimulatorApp({ state, token, rateLimiter, now });
  const admin = createSimulatorAdmin(state, rateLimiter, now);
  registerAdminRoutes(app, admin);
  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('simulator did not bind a TCP port');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${host}:${address.port}`;
  return { url: `${origin}/v1`, origin, token, admin, close: () => app.close() };
};
