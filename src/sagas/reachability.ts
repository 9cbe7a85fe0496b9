import { connect as tcpConnect } from 'node:net';
import { isLoopbackHost } from '../config/config.ts';

/**
 * Addresses that reach this machine itself, where port 22 is its own sshd: loopback (the simulator
 * hands it out), the unspecified address (Linux connects it locally) and IPv4-mapped forms of both.
 */
export const isThisMachine = (host: string): boolean => {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const mapped = /^::ffff:(.*)$/.exec(h)?.[1];
  if (mapped) return isThisMachine(mapped);
  return isLoopbackHost(h) || h === '0.0.0.0' || h === '::' || h.startsWith('0.');
};

/**
 * The port guard: why the saga must not point Ansible at host:port, or null when it may.
 * Applied when the server is found ready and again right before each run.
 */
export const forbiddenTarget = (host: string, port: number): string | null =>
  isThisMachine(host) && port === 22 ? `refusing to provision ${host}:22: that is this machine's own sshd` : null;

/** True when something accepts TCP on host:port within the timeout: sshd is up. */
export const tcpAccepts = (host: string, port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
