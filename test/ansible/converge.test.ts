import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskProgress } from '../../src/ansible/runner-port.ts';
import { startControlPlane, type ControlPlane } from '../../src/app/control-plane.ts';
import { loadConfig } from '../../src/config/config.ts';
import { registerHardeningTests } from './node-hardening.ts';
import { converge, holdAptLocks, installHostKey, startTestNode, stopTestNode, userDataOfCreatedServer, type StampedProgress, type TestNodeSession } from './test-node-session.ts';

// The end-to-end proof: node-provision.yml converges a real systemd node (Debian 12 in
// systemd-nspawn, standing in for Ubuntu 24.04; ADR 0020) and a second run changes nothing.
// The first converge goes the whole way: HTTP API → ProvisionRequested → saga over JetStream →
// Hetzner simulator (server at 127.0.0.1, sshPort = the test node's port) → the runner adapter.
// It starts as a real first boot would: dpkg and apt locks held (as unattended-upgrades and
// apt-daily hold them), and the apt tasks must wait them out. The node plays cloud-init: the create
// is held in the simulator until the host key from the create's user_data is installed on the node,
// and every run checks that key strictly (issue 10). The second run uses the runner adapter
// directly, with the same key, and must report changed=0. Then the hardening is shown to act (node-hardening.ts).
// Needs root, debootstrap and systemd-nspawn; .ci/run sets PRESSLUFT_TEST_NODE=1.
// Debian 13 runs the same converge and checks in node-debian13.test.ts.
const enabled = process.env.PRESSLUFT_TEST_NODE === '1';

/** The apt tasks must still be waiting when the locks go: hold them this long after the first apt task starts. */
const LOCK_HELD_AFTER_APT_STARTS_MS = 30_000;

describe.skipIf(!enabled)('node-provision on the Debian 12 test node (skipped unless PRESSLUFT_TEST_NODE=1)', () => {
  let s: TestNodeSession;
  let cp: ControlPlane | undefined;

  beforeAll(async () => {
    s = await startTestNode('bookworm');
  }, 900_000);

  afterAll(async () => {
    await cp?.stop();
    await stopTestNode('bookworm', s);
  }, 120_000);

  /** Converge #1 through the whole control plane: API, event log, saga, simulator, runner. */
  const provisionThroughApi = async (onProgress: (p: StampedProgress) => void) => {
    cp = await startControlPlane(
      loadConfig({
        PRESSLUFT_DATA_DIR: join(s.dir, 'data'),
        PRESSLUFT_PORT: '0',
        PRESSLUFT_LOG_LEVEL: 'warn',
        PRESSLUFT_ALLOW_TEST_DISTRO: '1',
        PRESSLUFT_WP_CLI_PHAR: String(s.vars.wp_cli_phar_src),
        PRESSLUFT_WP_CLI_SHA256: String(s.vars.wp_cli_sha256),
        PRESSLUFT_MAX_ATTEMPTS: '1',
        PRESSLUFT_ANSIBLE_TIMEOUT_MS: String(40 * 60_000),
        PRESSLUFT_JOB_TIMEOUT_MS: String(45 * 60_000),
      }),
    );
    const api = (path: string, init?: RequestInit) =>
      fetch(`${cp!.url}${path}`, { ...init, headers: { authorization: `Bearer ${cp!.apiToken}`, 'content-type': 'application/json' } });
    const started = Date.now();
    // The create action stays running until the node has the host key the create's user_data carries.
    const sim = cp.simulator!.admin;
    sim.setActionDuration(null);
    const res = await api('/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'converge-node', serverType: 'cx22', location: 'fsn1', sshPort: s.node.port }) });
    expect(res.status).toBe(202);
    const { nodeId, jobId } = (await res.json()) as { nodeId: string; jobId: string };
    const hostKey = await installHostKey(s, { userData: await userDataOfCreatedServer(() => sim.snapshot().servers) });
    sim.setActionDuration(1000);
    sim.finishActions();
    const progress: StampedProgress[] = [];
    const unsubscribe = cp.store.subscribeProgress(jobId, (raw) => {
      const p = { ...(raw as TaskProgress), at: Date.now() };
      progress.push(p);
      onProgress(p);
    });
    let job: { status: string; errorCode: string | null; errorMessage: string | null } = { status: 'queued', errorCode: null, errorMessage: null };
    while (['queued', 'running'].includes(job.status) && Date.now() - started < 45 * 60_000) {
      await new Promise((r) => setTimeout(r, 2000));
      job = (await (await api(`/v1/jobs/${jobId}`)).json()) as typeof job;
    }
    unsubscribe();
    console.log(`bookworm converge #1 (API → saga → simulator → runner): wall ${((Date.now() - started) / 1000).toFixed(1)} s, job ${job.status}`);
    if (job.status !== 'succeeded') console.log(job.errorCode, job.errorMessage);
    expect(job).toMatchObject({ status: 'succeeded', errorCode: null });
    const nodeView = (await (await api(`/v1/nodes/${nodeId}`)).json()) as { status: string };
    const history = (await (await api(`/v1/nodes/${nodeId}/events`)).json()) as { events: Array<{ type: string; data: { recap?: { changed: number }; hostKey?: { fingerprint: string }; hostKeyFingerprint?: string | null } }> };
    const succeeded = history.events.find((e) => e.type === 'AnsibleSucceeded');
    return {
      recap: succeeded?.data.recap ?? { changed: 0 },
      progress,
      nodeStatus: nodeView.status,
      types: history.events.map((e) => e.type),
      installed: hostKey.fingerprint,
      recorded: history.events.find((e) => e.type === 'ServerCreateRequested')?.data.hostKey?.fingerprint,
      trustedByRun: history.events.find((e) => e.type === 'AnsibleStarted')?.data.hostKeyFingerprint,
    };
  };

  it('converges through the API and the saga while the dpkg lock is held, then a second run reports changed=0', async () => {
    // A first boot: the locks are taken before the converge starts, and released only
    // LOCK_HELD_AFTER_APT_STARTS_MS after the first apt task began.
    const locks = await holdAptLocks(s);
    let released: Promise<number> | undefined;
    const first = await provisionThroughApi((p) => {
      if (!released && p.task.startsWith('common : Make apt-get wait for the dpkg lock')) {
        released = new Promise((ok) => setTimeout(ok, LOCK_HELD_AFTER_APT_STARTS_MS)).then(() => locks.release());
      }
    });
    const releasedAt = await (released ?? locks.release());
    expect(first.nodeStatus).toBe('ready');
    expect(first.types.indexOf('ServerReady')).toBeLessThan(first.types.indexOf('AnsibleStarted'));
    expect(first.types.at(-1)).toBe('ProvisionSucceeded');
    // The key the node presents is the one injected at create, and the run recorded trusting it.
    expect(first.recorded).toBe(first.installed);
    expect(first.trustedByRun).toBe(first.installed);
    expect(first.recap.changed).toBeGreaterThan(0);
    expect(first.progress.some((p) => p.task.startsWith('node_verify : Check that ufw is active'))).toBe(true);
    // The apt tasks started while the locks were held and finished only after they were released.
    const lockTask = first.progress.find((p) => p.task.startsWith('common : Make apt-get wait for the dpkg lock'));
    const installTask = first.progress.find((p) => p.task.startsWith('common : Install the base packages'));
    expect(lockTask!.at).toBeLessThan(releasedAt);
    expect(installTask!.at).toBeGreaterThanOrEqual(releasedAt);
    await cp?.stop();
    cp = undefined;

    // Strict checking again: the session's target carries the injected key.
    expect(s.node.hostKey.fingerprint).toBe(first.installed);
    const second = await converge(s, 'converge #2');
    expect(second.result).toMatchObject({ ok: true, errorCode: null });
    expect(second.result.recap).toMatchObject({ changed: 0, failures: 0, unreachable: 0 });
    const tasks = second.progress.filter((p) => !p.handler);
    const total = tasks[0]?.total ?? 0;
    expect(total).toBeGreaterThan(50);
    expect(tasks.map((p) => p.index)).toEqual(tasks.map((_, i) => i + 1));
    expect(tasks.length).toBeGreaterThanOrEqual(total - 1);

    // Nothing of either run outlives it: no ansible, no ssh (including the ControlPersist master).
    // Only this node's runs: other suites may be running their own ansible right now.
    const { stdout } = await execa('ps', ['-eo', 'args'], {});
    const ours = (l: string) => l.includes(s.tmpRoot) || (l.includes('pressluft-ansible-') && l.includes(`Port=${s.node.port}`));
    expect(stdout.split('\n').filter(ours)).toEqual([]);
  }, 70 * 60_000);

  registerHardeningTests(() => s);
});
