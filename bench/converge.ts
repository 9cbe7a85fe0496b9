/**
 * `npm run bench:converge`: the node-provision playbook on the disposable test node, bare
 * `ansible-playbook` against the product's AnsiblePlaybookRunner, first converge and rerun each.
 * Each first converge gets a fresh node (scripts/test-node.sh down + up; the rootfs is cached).
 *
 * Both paths get the same inputs: ansible/ansible.cfg, the runner's environment (ansibleEnv), its
 * inventory line and its `!unsafe` vars file, the same ssh options, and the progress callback on
 * fd 3, whose start/result events give the per-task profile. Bare uses the key as a file; the
 * runner holds it in a per-run ssh-agent, as in production.
 *
 * Control-plane CPU per run: this process's own user+system time, plus its waited-for children's
 * (cutime+cstime from /proc/self/stat: ansible-playbook with its forked workers and their ssh
 * clients, the runner's ssh-agent), plus the ssh ControlPersist master, which daemonises out of
 * the tree and is sampled from /proc while it lives. The node's side (sshd, Python modules, apt)
 * runs on the same machine here but is not counted: on a real fleet it is the server's CPU.
 */
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { z } from 'zod';
import { ansibleEnv } from '../src/ansible/ansible-env.ts';
import { AnsiblePlaybookRunner } from '../src/ansible/ansible-playbook-runner.ts';
import { renderInventory } from '../src/ansible/inventory.ts';
import { parseProgressLine } from '../src/ansible/progress-event.ts';
import type { Recap, RunTarget } from '../src/ansible/runner-port.ts';
import { renderUnsafeVars } from '../src/ansible/unsafe-vars.ts';
import { loadOrCreateSshKeyPair } from '../src/ssh-keys/key-pair-store.ts';
import { benchLogger, fmt, intFlag, loadAverage, median, onCleanup, parseFlags, runBench, table, tempDir, verdict } from './bench-support.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const PLAYBOOK = 'ansible/playbooks/node-provision.yml';
const TICKS = 100; // CLK_TCK on Linux
// Not wp-cli.phar (GitHub is unreachable here): the tests' stand-in that answers --version (ADR 0021).
const STAND_IN_WP_CLI = '#!/usr/bin/env php\n<?php\n// Pressluft bench stand-in for wp-cli.phar.\nfwrite(STDOUT, "WP-CLI 0.0.0-pressluft-stand-in\\n");\n';
const TARGETS = { rerunS: 25, firstS: 110, ratio: 1.03 };

const flags = parseFlags(z.object({
  distro: z.enum(['bookworm', 'trixie']).default('bookworm'),
  reruns: intFlag(3),
  // `product` alone skips the bare first converge (about a third of the bench's time on a loaded machine).
  firsts: z.enum(['bare,product', 'product']).default('bare,product'),
}));

interface Measured {
  label: string;
  wallS: number;
  cpuS: number;
  recap: Recap | null;
  /** Seconds from each task's start event to its result (bare only), in run order. */
  tasks: Array<{ task: string; seconds: number }>;
  /** Load average right after the run. */
  load?: string;
}

/** This process's own and its waited-for children's CPU seconds, from /proc/self/stat. */
const treeCpu = (): number => {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
};

/**
 * Samples the CPU of the ssh mux masters (`ssh: <path> [mux]`) under `dir` while they live: a full
 * /proc scan every 5 s to find them, their own stat every 0.5 s (cheap: this process pays for it).
 */
const muxSampler = (dir: string) => {
  const seen = new Map<number, number>();
  const read = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seen.set(pid, (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // gone: keep its last sample
    }
  };
  const scan = () => {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || seen.has(Number(name))) continue;
      try {
        const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
        if (cmd.startsWith('ssh: ') && cmd.includes(dir)) read(Number(name));
      } catch {
        // gone between readdir and read
      }
    }
  };
  let ticks = 0;
  const timer = setInterval(() => (ticks++ % 10 === 0 ? scan() : [...seen.keys()].forEach(read)), 500);
  return {
    pids: () => [...seen.keys()],
    stop: (): number => {
      clearInterval(timer);
      [...seen.keys()].forEach(read);
      return [...seen.values()].reduce((a, b) => a + b, 0);
    },
  };
};

const testNode = async (cmd: 'up' | 'down', pubFile?: string): Promise<RunTarget> => {
  const { stdout } = await run(resolve(root, 'scripts/test-node.sh'), [cmd, '--distro', flags.distro, ...(pubFile ? [pubFile] : [])], { maxBuffer: 1 << 24 });
  if (cmd === 'down') return { host: '', port: 0, user: '' };
  const m = /^PRESSLUFT_TEST_NODE=(127\.0\.0\.1):(\d+)$/m.exec(stdout);
  if (!m?.[1] || !m[2]) throw new Error(`test-node.sh up printed no target:\n${stdout}`);
  return { host: m[1], port: Number(m[2]), user: 'root' };
};

/** Bare ansible-playbook with the runner's inputs; the callback's events on fd 3 time each task. */
const bare = async (dir: string, node: RunTarget, vars: Record<string, unknown>, keyFile: string, label: string): Promise<Measured> => {
  const runDir = await mkdtemp(join(dir, 'bare-'));
  await writeFile(join(runDir, 'inventory.ini'), renderInventory(node), { mode: 0o600 });
  await writeFile(join(runDir, 'vars.yml'), renderUnsafeVars(vars), { mode: 0o600 });
  const ssh = ['-o StrictHostKeyChecking=accept-new', `-o UserKnownHostsFile=${join(runDir, 'known_hosts')}`, '-o IdentitiesOnly=yes', `-o IdentityFile=${keyFile}`];
  const args = ['-i', join(runDir, 'inventory.ini'), '-e', `@${join(runDir, 'vars.yml')}`, `--ssh-extra-args=${ssh.join(' ')}`, PLAYBOOK];
  const env = ansibleEnv({ config: resolve(root, 'ansible/ansible.cfg'), localTemp: join(runDir, 'ansible-local-tmp'), controlPathDir: join(runDir, 'cp'), progressFd: 3 });
  const mux = muxSampler(runDir);
  const cpu0 = treeCpu();
  const t0 = performance.now();
  const child = spawn('ansible-playbook', args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  const tasks: Measured['tasks'] = [];
  let recap: Recap | null = null;
  let current: { task: string; at: number } | null = null;
  createInterface({ input: child.stdio[3] as NodeJS.ReadableStream }).on('line', (line) => {
    const e = parseProgressLine(line);
    if (e?.event === 'start') current = { task: e.task, at: performance.now() };
    if (e?.event === 'task' && current) tasks.push({ task: e.task, seconds: (performance.now() - current.at) / 1000 });
    if (e?.event === 'stats') recap = Object.values(e.hosts)[0] ?? null;
  });
  const code = await new Promise<number | null>((ok) => child.once('close', ok));
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = treeCpu() - cpu0 + mux.stop();
  // End the mux master (ControlPersist keeps it 60 s), as the runner does, by its pid.
  for (const pid of mux.pids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  if (code !== 0) throw new Error(`bare ${label}: ansible-playbook exited ${code}`);
  return { label: `bare ${label}`, wallS, cpuS, recap, tasks };
};

const product = async (dir: string, node: RunTarget, vars: Record<string, unknown>, privateKey: string, label: string): Promise<Measured> => {
  // No spaces: the runner passes the known_hosts path inside --ssh-extra-args, which Ansible splits.
  const tmpRoot = join(dir, `runner-${label.replace(/\W+/g, '-')}`);
  await mkdir(tmpRoot, { mode: 0o700 });
  const runner = new AnsiblePlaybookRunner({ logger: benchLogger(), tmpRoot });
  const mux = muxSampler(tmpRoot);
  const cpu0 = treeCpu();
  const t0 = performance.now();
  const result = await runner.run({ playbook: PLAYBOOK, node, vars, privateKey, secrets: [privateKey], timeoutMs: 40 * 60_000 });
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = treeCpu() - cpu0 + mux.stop();
  if (!result.ok) throw new Error(`product ${label}: ${result.errorCode}: ${result.errorMessage}`);
  return { label: `product ${label}`, wallS, cpuS, recap: result.recap, tasks: [] };
};

const slowest = (m: Measured, n = 15): string =>
  table(['#', 'task', 's'], [...m.tasks].sort((a, b) => b.seconds - a.seconds).slice(0, n).map((t, i) => [String(i + 1), t.task, fmt(t.seconds, 2)]));

await runBench(`Converge on the ${flags.distro} test node: bare ansible-playbook vs AnsiblePlaybookRunner`, async () => {
  const dir = await tempDir('converge');
  const keys = await loadOrCreateSshKeyPair({ dataDir: join(dir, 'data') });
  const pubFile = join(dir, 'id.pub');
  const keyFile = join(dir, 'id');
  await writeFile(pubFile, `${keys.publicKey}\n`);
  await writeFile(keyFile, keys.privateKey.endsWith('\n') ? keys.privateKey : `${keys.privateKey}\n`, { mode: 0o600 });
  const phar = join(dir, 'wp-cli-stand-in.phar');
  await writeFile(phar, STAND_IN_WP_CLI, { mode: 0o644 });
  const vars = { pressluft_allow_test_distro: true, wp_cli_phar_src: phar, wp_cli_sha256: createHash('sha256').update(STAND_IN_WP_CLI).digest('hex') };
  onCleanup(async () => void (await testNode('down')));

  // A fresh node for each first converge; then rerun pairs on the last node, alternating which path
  // goes first, so that a load swing on this shared machine hits both paths alike.
  const measure = async (mode: 'bare' | 'product', node: RunTarget, label: string): Promise<Measured> => {
    process.stderr.write(`${mode} ${label} (load ${loadAverage()})\n`);
    const m = mode === 'bare' ? await bare(dir, node, vars, keyFile, label) : await product(dir, node, vars, keys.privateKey, label);
    process.stderr.write(`  ${fmt(m.wallS, 1)} s, control-plane CPU ${fmt(m.cpuS, 2)} s, recap ${JSON.stringify(m.recap)}\n`);
    return { ...m, load: loadAverage() };
  };
  const firsts: Measured[] = [];
  let node: RunTarget | null = null;
  for (const mode of flags.firsts.split(',') as Array<'bare' | 'product'>) {
    await testNode('down');
    node = await testNode('up', pubFile);
    firsts.push(await measure(mode, node, 'first'));
  }
  const reruns: Array<{ bare: Measured; product: Measured }> = [];
  for (let i = 1; i <= flags.reruns; i++) {
    const order = i % 2 === 1 ? (['bare', 'product'] as const) : (['product', 'bare'] as const);
    const pair: Partial<Record<'bare' | 'product', Measured>> = {};
    for (const mode of order) pair[mode] = await measure(mode, node!, `rerun ${i}`);
    reruns.push(pair as { bare: Measured; product: Measured });
  }
  const prodFirst = firsts.at(-1)!;
  const bareFirst = firsts.length > 1 ? firsts[0]! : null;
  const all = [...firsts, ...reruns.flatMap((r) => [r.bare, r.product])];
  const row = (m: Measured) => [m.label, m.load ?? '', fmt(m.wallS, 1), fmt(m.cpuS, 2), fmt(m.wallS / m.cpuS, 1), String(m.recap?.ok ?? '-'), String(m.recap?.changed ?? '-'), String(m.recap?.failures ?? '-')];
  process.stdout.write(`${table(['run', 'load avg after (1/5/15 min)', 'wall s', 'control-plane CPU s', 'converges one core sustains (wall / CPU)', 'ok', 'changed', 'failed'], all.map(row))}\n\n`);
  const ratioFirst = bareFirst ? prodFirst.wallS / bareFirst.wallS : Number.NaN;
  const ratios = reruns.map((r) => r.product.wallS / r.bare.wallS);
  const bareRerunS = median(reruns.map((r) => r.bare.wallS));
  const prodRerunS = median(reruns.map((r) => r.product.wallS));
  const rerunCpu = median(reruns.map((r) => r.product.cpuS));
  const unchanged = reruns.every((r) => r.bare.recap?.changed === 0 && r.product.recap?.changed === 0);
  process.stdout.write(`${table(['target', 'measured', 'verdict'], [
    [`idempotent rerun ≤ ${TARGETS.rerunS} s (median; product, bare)`, `${fmt(prodRerunS, 1)} s, ${fmt(bareRerunS, 1)} s`, verdict(prodRerunS, TARGETS.rerunS, false)],
    [`first converge ≤ ${TARGETS.firstS} s (product, bare)`, `${fmt(prodFirst.wallS, 1)} s, ${bareFirst ? fmt(bareFirst.wallS, 1) : '-'} s`, verdict(prodFirst.wallS, TARGETS.firstS, false)],
    [`product / bare ≤ ${TARGETS.ratio}× (first; one sample each)`, `${fmt(ratioFirst, 3)}×`, verdict(ratioFirst, TARGETS.ratio, false)],
    [`product / bare ≤ ${TARGETS.ratio}× (rerun; median of the pairs)`, `${fmt(median(ratios), 3)}× (${ratios.map((r) => fmt(r, 3)).join(', ')})`, verdict(median(ratios), TARGETS.ratio, false)],
    ['every rerun changed = 0', unchanged ? 'yes' : 'no', unchanged ? 'MET' : 'NOT MET'],
  ])}\n\n`);
  process.stdout.write(`Control plane: a product rerun costs ${fmt(rerunCpu, 2)} CPU s in ${fmt(prodRerunS, 1)} s (median), so one core sustains about ${fmt(prodRerunS / rerunCpu, 1)} concurrent reruns; a first converge ${fmt(prodFirst.cpuS, 2)} CPU s in ${fmt(prodFirst.wallS, 1)} s, about ${fmt(prodFirst.wallS / prodFirst.cpuS, 1)}.\n\n`);
  if (bareFirst) process.stdout.write(`Slowest 15 tasks, bare first converge (start to result):\n\n${slowest(bareFirst)}\n\n`);
  process.stdout.write(`Slowest 15 tasks, bare rerun 1:\n\n${slowest(reruns[0]!.bare)}\n`);
});
