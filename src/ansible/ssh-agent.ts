import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunDir } from './run-dir.ts';

const AGENT_READY_MS = 10_000;

export class SshAgentError extends Error {}

/** A run's own ssh-agent: it holds the private key in memory, so no key file is ever written. */
export interface RunAgent {
  /** For SSH_AUTH_SOCK; inside the 0700 run dir. */
  sock: string;
  /** The key's public half (not a secret): ssh's IdentityFile, so IdentitiesOnly picks it from the agent. */
  publicKeyFile: string;
  stop(): Promise<void>;
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short command, with `input` on stdin (never argv or a file) when given, and collects its output. */
const runShort = async (cmd: string, args: string[], env: Record<string, string>, input: string | null): Promise<Finished> => {
  const child = spawn(cmd, args, { env, stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // A command that exits before reading all of stdin (EPIPE) reports itself by its exit code.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
};

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Closing the keeper's stdin ends the agent; SIGKILL only if the keeper does not exit in time. */
const stopAgent = async (keeper: ChildProcess, graceMs: number): Promise<void> => {
  if (exited(keeper)) return;
  const closed = once(keeper, 'exit');
  keeper.stdin?.end();
  const late = await Promise.race([closed.then(() => false), sleep(graceMs).then(() => true)]);
  if (late) {
    keeper.kill('SIGKILL');
    await closed;
  }
};

/**
 * A shell that keeps the agent for as long as its stdin (a pipe from this process) is open. Once
 * it closes, by stop() or because the control plane died, even by SIGKILL, the agent is killed.
 * (ssh-agent is setgid on Debian, so a parent-death signal set before its exec would be dropped.)
 */
const KEEPER = 'ssh-agent -D -a "$1" & agent=$!; read -r _; kill "$agent"; wait "$agent"';

/** Resolves once the agent printed its socket (it binds before printing), rejects if it died. */
const ready = (child: ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new SshAgentError(`ssh-agent did not start within ${AGENT_READY_MS} ms`)), AGENT_READY_MS);
    const settle = (error: SshAgentError | null) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('SSH_AUTH_SOCK=') && settle(null));
    child.once('error', (e) => settle(new SshAgentError(`ssh-agent could not be started: ${e.message}`)));
    child.once('exit', (code) => settle(new SshAgentError(`ssh-agent exited (${code}): ${stderr.trim()}`)));
  });

/**
 * Starts `ssh-agent -D` with its socket in the run dir and adds the key over stdin (`ssh-add -`),
 * with a lifetime, so even an agent that somehow outlived its run forgets the key. The agent ends
 * with the run, or with the control plane (KEEPER); the run's cleanup and the start-up sweep of
 * abandoned run dirs end it by its socket path otherwise.
 */
export const startRunAgent = async (dir: RunDir, privateKey: string, o: { lifetimeSec: number; graceMs: number }): Promise<RunAgent> => {
  const sock = dir.file('agent.sock');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', SSH_AUTH_SOCK: sock };
  const child = spawn('sh', ['-c', KEEPER, 'pressluft-ssh-agent', sock], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  const stop = () => stopAgent(child, o.graceMs);
  try {
    await ready(child);
    const key = privateKey.endsWith('\n') ? privateKey : `${privateKey}\n`;
    const added = await runShort('ssh-add', ['-q', '-t', String(Math.ceil(o.lifetimeSec)), '-'], env, key);
    // ssh-add names "(stdin)", never the key; its message is safe to show.
    if (added.code !== 0) throw new SshAgentError(`ssh-add refused the control-plane key: ${added.stderr.trim()}`);
    const listed = await runShort('ssh-add', ['-L'], env, null);
    if (listed.code !== 0) throw new SshAgentError(`ssh-add -L failed: ${listed.stderr.trim()}`);
    const publicKeyFile = await dir.write('id_control_plane.pub', listed.stdout);
    return { sock, publicKeyFile, stop };
  } catch (e) {
    await stop();
    throw e;
  }
};
