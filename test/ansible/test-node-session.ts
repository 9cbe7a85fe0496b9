import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import type { HostKey } from '../../src/events/node-events.ts';
import { sha256Fingerprint } from '../../src/ssh-keys/fingerprint.ts';
import type { RunResult, RunTarget, TaskProgress } from '../../src/ansible/runner-port.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { loadOrCreateSshKeyPair, type SshKeyPair } from '../../src/ssh-keys/key-pair-store.ts';

// One disposable test node per suite (scripts/test-node.sh), the converge runs against it, and a
// shell inside it over ssh. Both distributions stand in for Ubuntu 24.04 (ADR 0020, ADR 0023).
// Everything stays on loopback: the node's sshd is bridged to 127.0.0.1:<port>.

export type Distro = 'bookworm' | 'trixie';

const root = resolve(import.meta.dirname, '../..');
const testNodeScript = resolve(root, 'scripts/test-node.sh');

// WP-CLI cannot be downloaded here (GitHub is unreachable), so this is NOT wp-cli.phar: a tiny PHP
// script built on the control plane that answers --version. It exercises the real install path
// (pinned sha256 on the control plane, copied to the node, run by node_verify). ADR 0021.
const STAND_IN_WP_CLI = '#!/usr/bin/env php\n<?php\n// Pressluft test stand-in for wp-cli.phar.\nfwrite(STDOUT, "WP-CLI 0.0.0-pressluft-stand-in\\n");\n';

export interface TestNodeSession {
  distro: Distro;
  dir: string;
  /** Per-run temp dirs of the runner; nothing of a run may outlive it there. */
  tmpRoot: string;
  /** Carries the host key the node presents (test-node.sh prints it): every run checks it strictly. */
  node: RunTarget & { hostKey: HostKey };
  /** A netns wired to the node by a veth pair: clients whose address is not the node's own. */
  clientNs: string;
  /** The node's address on that link. */
  linkAddr: string;
  keyPair: SshKeyPair;
  /** The private key as a 0600 file, for the test's own ssh into the node. */
  keyFile: string;
  vars: Record<string, unknown>;
}

/** What test-node.sh printed as PRESSLUFT_TEST_NODE_HOST_KEY: the key the node presents right now. */
const presentedKey = (stdout: string, all: string | undefined): HostKey => {
  const publicKey = /^PRESSLUFT_TEST_NODE_HOST_KEY=(ssh-ed25519 \S+)$/m.exec(stdout)?.[1];
  if (!publicKey) throw new Error(`test-node.sh printed no host key:\n${all ?? stdout}`);
  return { publicKey, fingerprint: sha256Fingerprint(publicKey) };
};

/** How the node gets its host key, as cloud-init would: the #cloud-config the control plane sent, or a private key file. */
export type HostKeySource = { userData: string } | { privateKeyFile: string };

const hostKeyArgs = async (dir: string, source: HostKeySource | undefined): Promise<string[]> => {
  if (!source) return [];
  if ('privateKeyFile' in source) return ['--host-key', source.privateKeyFile];
  const file = join(dir, `user-data-${Date.now()}.yaml`);
  await writeFile(file, source.userData, { mode: 0o600 });
  return ['--user-data', file];
};

/** Gives the running node another host key (test-node.sh host-key); later runs of this session expect it. */
export const installHostKey = async (s: TestNodeSession, source: HostKeySource): Promise<HostKey> => {
  const r = await execa(testNodeScript, ['host-key', '--distro', s.distro, ...(await hostKeyArgs(s.dir, source))], { all: true });
  const key = presentedKey(r.stdout, r.all);
  s.node = { ...s.node, hostKey: key };
  return key;
};

/** Waits for the server the saga created (its create held in the simulator) and returns the #cloud-config it carries. */
export const userDataOfCreatedServer = async (servers: () => Array<{ userData: string | null }>): Promise<string> => {
  const until = Date.now() + 120_000;
  for (;;) {
    const userData = servers().find((sv) => sv.userData)?.userData;
    if (userData) return userData;
    if (Date.now() > until) throw new Error('no server with user_data was created within 120 s');
    await new Promise((r) => setTimeout(r, 200));
  }
};

export const startTestNode = async (distro: Distro, hostKey?: HostKeySource): Promise<TestNodeSession> => {
  const dir = await mkdtemp(join(tmpdir(), `pressluft-node-${distro}-`));
  const tmpRoot = join(dir, 'runs');
  await mkdir(tmpRoot, { mode: 0o700 });
  // The control plane's own key pair: the test node trusts its public half.
  const keyPair = await loadOrCreateSshKeyPair({ dataDir: join(dir, 'data') });
  await writeFile(join(dir, 'id.pub'), `${keyPair.publicKey}\n`);
  const keyFile = join(dir, 'id_test');
  await writeFile(keyFile, keyPair.privateKey.endsWith('\n') ? keyPair.privateKey : `${keyPair.privateKey}\n`, { mode: 0o600 });
  const phar = join(dir, 'wp-cli-stand-in.phar');
  await writeFile(phar, STAND_IN_WP_CLI, { mode: 0o644 });
  const vars = {
    pressluft_allow_test_distro: true,
    wp_cli_phar_src: phar,
    wp_cli_sha256: createHash('sha256').update(STAND_IN_WP_CLI).digest('hex'),
  };
  const started = Date.now();
  const up = await execa(testNodeScript, ['up', '--distro', distro, ...(await hostKeyArgs(dir, hostKey)), join(dir, 'id.pub')], { all: true });
  console.log(`${distro} test node up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const where = /^PRESSLUFT_TEST_NODE=(127\.0\.0\.1):(\d+)$/m.exec(up.stdout);
  const clientNs = /^PRESSLUFT_TEST_NODE_CLIENT_NS=(\S+)$/m.exec(up.stdout)?.[1];
  const linkAddr = /^PRESSLUFT_TEST_NODE_LINK_ADDR=(\S+)$/m.exec(up.stdout)?.[1];
  if (!where?.[1] || !where[2] || !clientNs || !linkAddr) throw new Error(`test-node.sh up printed no target:\n${up.all}`);
  const node = { host: where[1], port: Number(where[2]), user: 'root', hostKey: presentedKey(up.stdout, up.all) };
  return { distro, dir, tmpRoot, node, clientNs, linkAddr, keyPair, keyFile, vars };
};

export const stopTestNode = async (distro: Distro, session: TestNodeSession | undefined): Promise<void> => {
  await execa(testNodeScript, ['down', '--distro', distro], { reject: false });
  if (session) await rm(session.dir, { recursive: true, force: true });
};

/** Runs a bash script on the client side of the node's link (a netns of its own, never the host's network). */
export const inClient = async (s: TestNodeSession, script: string): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
  const r = await execa('ip', ['netns', 'exec', s.clientNs, 'bash', '-s'], { input: script, reject: false, timeout: 180_000 });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
};

/** A task result, stamped with the host time it arrived: the lock test orders them against the release. */
export type StampedProgress = TaskProgress & { at: number };

export const converge = async (
  s: TestNodeSession,
  label: string,
  onProgress?: (p: StampedProgress) => void,
): Promise<{ result: RunResult; progress: StampedProgress[] }> => {
  const progress: StampedProgress[] = [];
  const runner = new AnsiblePlaybookRunner({ logger: createLogger('warn'), tmpRoot: s.tmpRoot });
  const started = Date.now();
  const result = await runner.run({
    playbook: 'ansible/playbooks/node-provision.yml',
    node: s.node,
    vars: s.vars,
    privateKey: s.keyPair.privateKey,
    secrets: [s.keyPair.privateKey],
    timeoutMs: 40 * 60_000,
    onProgress: (p) => {
      const stamped = { ...p, at: Date.now() };
      progress.push(stamped);
      onProgress?.(stamped);
    },
  });
  console.log(`${s.distro} ${label}: wall ${((Date.now() - started) / 1000).toFixed(1)} s, recap ${JSON.stringify(result.recap)}`);
  if (!result.ok) console.log(result.outputTail);
  return { result, progress };
};

const sshArgs = (s: TestNodeSession): string[] => [
  '-i', s.keyFile, '-p', String(s.node.port),
  '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
  '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
  `root@${s.node.host}`,
];

/** Runs a bash script as root inside the node (the script goes over stdin). */
export const inNode = async (s: TestNodeSession, script: string): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
  const r = await execa('ssh', [...sshArgs(s), 'bash', '-s'], { input: script, reject: false, timeout: 180_000 });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
};

// fcntl locks, as dpkg and apt take them (flock(1) locks would not conflict with them): the dpkg
// frontend lock and the dpkg lock (unattended-upgrades) and the apt lists lock (apt-daily's
// `apt update`), as on a cloud server's first boot. Held until the ssh session's stdin closes;
// the alarm is a backstop if the test dies without closing it.
const HOLD_APT_LOCKS = [
  'import fcntl, signal, sys',
  'signal.alarm(600)',
  'files = [open(p, "a") for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")]',
  '[fcntl.lockf(f, fcntl.LOCK_EX) for f in files]',
  'print("held", flush=True)',
  'sys.stdin.read()',
].join('; ');

export interface AptLockHold {
  /** Closes the holder's stdin and resolves with the host time once the locks are free. */
  release(): Promise<number>;
}

/** Takes the dpkg and apt locks inside the node and keeps them until release(). */
export const holdAptLocks = async (s: TestNodeSession): Promise<AptLockHold> => {
  const holder = execa('ssh', [...sshArgs(s), 'python3', '-c', `'${HOLD_APT_LOCKS}'`], { stdin: 'pipe', reject: false });
  await new Promise<void>((ok, fail) => {
    let out = '';
    holder.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('held')) ok();
    });
    holder.then((r) => fail(new Error(`the lock holder ended before holding the locks: ${r.stderr}`)), fail);
  });
  return {
    release: async () => {
      holder.stdin?.end();
      await holder;
      return Date.now();
    },
  };
};
