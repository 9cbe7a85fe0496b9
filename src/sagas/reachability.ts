import { connect as tcpConnect } from 'node:net';

/** Loopback hosts: the simulator hands them out, and port 22 there is this machine's own sshd. */
export const isLoopback = (host: string): boolean => host.startsWith('127.') || host === '::1' || host === 'localhost';

/**
 * The port guard: why the saga must not point Ansible at host:port, or null when it may.
 * Applied when the server is found ready and again right before each run.
 */
export const forbiddenTarget = (host: string, port: number): string | null =>
  isLoopback(host) && port === 22 ? `refusing to provision ${host}:22: that is this machine's own sshd` : null;

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
