import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { provisionIds } from '../../src/commands/node-ids.ts';
import { startControlPlane, type ControlPlane } from '../../src/app/control-plane.ts';
import { handleCommand } from '../../src/commands/command-handler.ts';
import type { NodeCommand } from '../../src/commands/node-commands.ts';
import { loadConfig } from '../../src/config/config.ts';
import { useNatsServer } from '../support/nats.ts';
import { ctx } from '../support/node-fixtures.ts';
import { captureLogger } from '../support/silent-logger.ts';

// Every CLI run starts node afresh (seconds on a busy machine), so tests get room.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 600_000 });

const nats = useNatsServer();
let cp: ControlPlane;
let dataDir = '';

beforeAll(async () => {
  // The tests run bin/pressluft.js as users do: the compiled dist/ (vitest's globalSetup rebuilds it if src/ changed).
  dataDir = await mkdtemp(join(tmpdir(), 'pressluft-cli-'));
  // No PRESSLUFT_API_TOKEN: the control plane generates one and the CLI finds it in the data dir.
  const config = loadConfig({ NATS_URL: nats.server.url, PRESSLUFT_DATA_DIR: dataDir, PRESSLUFT_PORT: '0', PRESSLUFT_ROLE: 'api', PRESSLUFT_STREAM: 'CLI', PRESSLUFT_SUBJECT_PREFIX: 'pc' });
  cp = await startControlPlane(config, { logger: captureLogger('warn').logger });
});
afterAll(async () => {
  await cp?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  execa('node', ['bin/pressluft.js', ...args], {
    reject: false,
    env: { PRESSLUFT_URL: cp.url ?? '', PRESSLUFT_DATA_DIR: dataDir, PRESSLUFT_API_TOKEN: '', ...env },
    timeout: 60_000,
  });

const json = <T>(r: { stdout: string }): T => JSON.parse(r.stdout) as T;

/** Runs the CLI and keeps what it has printed so far readable while it runs. */
const cliFollowing = (args: string[]) => {
  const run = cli(args);
  let printed = '';
  run.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
  return { run, printed: () => printed };
};

/** Waits for the following CLI to print `text`; bounded so a lost line fails the test. */
const printedBy = (following: { printed: () => string }, text: string) =>
  vi.waitFor(() => expect(following.printed()).toContain(text), { timeout: 60_000, interval: 50 });

/**
 * Plays the saga's part for one job, so --wait has something to follow. Task progress is not
 * stored: it is published only once the CLI shows its stream is open (it printed the job's first
 * event, and the API subscribed to progress before sending it), and the result only once the CLI
 * printed the progress, so both arrive in order however slow the CLI process starts.
 */
const drive = async (nodeId: string, jobId: string, outcome: 'succeed' | 'fail', following: { printed: () => string }): Promise<void> => {
  while ((await cp.store.version(nodeId)) === 0) await new Promise((r) => setTimeout(r, 50));
  const run = (cmd: NodeCommand) => handleCommand(cp.repo, nodeId, cmd, ctx({ actor: 'saga', now: new Date().toISOString() }));
  await run({ type: 'StartAttempt', jobId });
  await run({ type: 'RecordSshKey', jobId, attempt: 1, keyId: '7', fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' });
  if (outcome === 'fail') {
    await run({ type: 'RecordStepFailure', jobId, attempt: 1, step: 'server_create', errorCode: 'PROVIDER_QUOTA_EXCEEDED', errorMessage: 'quota exceeded', retryable: false, now: new Date().toISOString() });
    return;
  }
  await run({ type: 'RecordServerCreateIntent', jobId, attempt: 1, serverName: 'cli-wait', labels: {} });
  await run({ type: 'RecordServerCreated', jobId, attempt: 1, serverId: '42', actionIds: [], adopted: false });
  await run({ type: 'RecordServerReady', jobId, attempt: 1, serverId: '42', ipv4: '127.0.0.1', ipv6: null, providerStatus: 'running' });
  await run({ type: 'RecordAnsibleStarted', jobId, attempt: 1, playbook: 'node-provision.yml' });
  await printedBy(following, '[ProvisionRequested]');
  for (const index of [1, 2]) {
    cp.store.publishProgress(jobId, { index, total: 2, task: `step ${index}`, host: 'node', status: 'ok', jobId, attempt: 1 });
  }
  await printedBy(following, 'Ansible task 2 of 2');
  const recap = { ok: 2, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 };
  await run({ type: 'RecordAnsibleResult', jobId, attempt: 1, result: { ok: true, errorCode: null, retryable: false, exitCode: 0, recap, durationMs: 1200, outputTail: '', finishedAt: new Date().toISOString() } });
};

describe('pressluft CLI against a running control plane', () => {
  it('creates, gets, lists and shows the history of a node (--json and human)', async () => {
    const created = await cli(['node', 'create', '--name', 'cli-1', '--type', 'cx22', '--location', 'fsn1', '--ssh-port', '2222', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    const { nodeId, jobId, position } = json<{ nodeId: string; jobId: string; position: number }>(created);

    const got = await cli(['node', 'get', nodeId, '--min-position', String(position), '--json']);
    expect(json(got)).toMatchObject({ id: nodeId, name: 'cli-1', sshPort: 2222, status: 'pending', currentJobId: jobId });
    const human = await cli(['node', 'get', nodeId, '--min-position', String(position)]);
    expect(human.stdout).toMatch(/name:\s+cli-1/);

    const list = await cli(['node', 'list']);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+STATUS/);
    expect(list.stdout).toContain(nodeId);

    const history = await cli(['node', 'history', nodeId]);
    expect(history.stdout).toContain(`history of node ${nodeId} (1 events)`);
    expect(history.stdout).toMatch(new RegExp(`#${position}\\s.*api:default\\s+${jobId}\\s+ProvisionRequested\\s+provision requested: cli-1 \\(cx22, fsn1, ubuntu-24.04, ssh root@:2222\\)`));
    const historyJson = json<{ events: Array<{ type: string; position: number }> }>(await cli(['node', 'history', nodeId, '--json']));
    expect(historyJson.events).toEqual([expect.objectContaining({ type: 'ProvisionRequested', position })]);

    const job = await cli(['job', 'get', jobId, '--json']);
    expect(json(job)).toMatchObject({ id: jobId, status: 'queued', kind: 'node_provision' });
  });

  it('cancels a job, and prints the stable code when it cannot', async () => {
    const { nodeId, jobId, position } = json<{ nodeId: string; jobId: string; position: number }>(
      await cli(['node', 'create', '--name', 'cli-cancel', '--type', 'cx22', '--location', 'fsn1', '--json']),
    );
    expect(await cp.projector.waitFor(position, 30_000)).toBe(true);
    const cancel = await cli(['job', 'cancel', jobId, '--reason', 'not needed']);
    expect(cancel.exitCode, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`cancel of job ${jobId} requested`);
    await handleCommand(cp.repo, nodeId, { type: 'ConfirmCancel', jobId }, ctx({ actor: 'saga' }));
    expect(await cp.projector.waitFor(await cp.store.lastPosition(), 30_000)).toBe(true);
    const again = await cli(['job', 'cancel', jobId]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('error [job_not_cancellable]');
    const againJson = await cli(['job', 'cancel', jobId, '--json']);
    expect(json(againJson)).toMatchObject({ error: { code: 'job_not_cancellable' } });
  });

  it('follows a job with --wait: steps, Ansible task N of M, exit 0 on success', async () => {
    const key = `cli-wait-${Date.now()}`;
    const { nodeId, jobId } = provisionIds(key);
    const following = cliFollowing(['node', 'create', '--name', 'cli-wait', '--type', 'cx22', '--location', 'fsn1', '--idempotency-key', key, '--wait']);
    const [run] = await Promise.all([following.run, drive(nodeId, jobId, 'succeed', following)]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain(`node ${nodeId} created; following job ${jobId}`);
    expect(run.stdout).toContain('[JobStarted] attempt 1 started');
    expect(run.stdout).toContain('[ServerReady] server 42 ready at 127.0.0.1');
    expect(run.stdout).toContain('Ansible task 1 of 2: step 1 [ok]');
    expect(run.stdout).toContain('Ansible task 2 of 2: step 2 [ok]');
    expect(run.stdout).toMatch(new RegExp(`job ${jobId} succeeded$`));
  });

  it('exits non-zero with --wait when the job fails', async () => {
    const key = `cli-fail-${Date.now()}`;
    const { nodeId, jobId } = provisionIds(key);
    const following = cliFollowing(['node', 'create', '--name', 'cli-fail', '--type', 'cx22', '--location', 'fsn1', '--idempotency-key', key, '--wait', '--json']);
    const [run] = await Promise.all([following.run, drive(nodeId, jobId, 'fail', following)]);
    expect(run.exitCode).toBe(1);
    expect(json(run)).toMatchObject({ id: jobId, status: 'failed', errorCode: 'PROVIDER_QUOTA_EXCEEDED' });
  });

  it('shows projection status and rebuilds with progress and the lag before and after', async () => {
    const status = await cli(['projections', 'status', '--json']);
    expect(json(status)).toMatchObject({ projections: [{ name: 'nodes', rebuilding: false }] });
    const rebuild = await cli(['projections', 'rebuild', '--name', 'nodes']);
    expect(rebuild.exitCode, rebuild.stderr).toBe(0);
    expect(rebuild.stderr).toMatch(/rebuilding nodes: replayed to position \d+ of \d+/);
    expect(rebuild.stdout).toMatch(/rebuilt nodes and swapped it in: replayed \d+ decisions in \d+ ms; lag before \d+, after \d+/);
    const asJson = await cli(['projections', 'rebuild', '--json']);
    expect(json(asJson)).toMatchObject({ name: 'nodes', replayed: expect.any(Number), lagBefore: expect.any(Number), lagAfter: expect.any(Number) });
  });

  it('prints stable codes for API and usage errors', async () => {
    const missing = await cli(['node', 'get', 'n_missing']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('error [not_found]');
    const wrongToken = await cli(['node', 'list'], { PRESSLUFT_API_TOKEN: 'wrong-token-wrong-token' });
    expect(wrongToken.exitCode).toBe(1);
    expect(wrongToken.stderr).toContain('error [unauthorized]');
    expect(wrongToken.stderr).not.toContain(cp.apiToken);
    const before = await cp.store.lastPosition();
    const badName = await cli(['node', 'create', '--name', 'Bad_Name', '--type', 'cx22', '--location', 'fsn1']);
    expect(badName.exitCode).toBe(2);
    expect(badName.stderr).toContain('error [usage]');
    expect(badName.stderr).toContain('name');
    const unknownFlag = await cli(['node', 'list', '--colour']);
    expect(unknownFlag.exitCode).toBe(2);
    const unreachable = await cli(['node', 'list'], { PRESSLUFT_URL: 'http://127.0.0.1:9' });
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.stderr).toContain('error [unreachable]');
    expect(await cp.store.lastPosition()).toBe(before);
  });
});

describe('pressluft serve', () => {
  it('refuses a bad config with CONFIG_INVALID naming the variable', async () => {
    const r = await execa('node', ['bin/pressluft.js', 'serve'], { reject: false, env: { PRESSLUFT_PORT: 'eighty', PRESSLUFT_DATA_DIR: dataDir } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('CONFIG_INVALID');
    expect(r.stderr).toContain('PRESSLUFT_PORT');
  });

  it('refuses to listen beyond loopback in plaintext, and a plaintext Hetzner endpoint off loopback', async () => {
    const open = await execa('node', ['bin/pressluft.js', 'serve'], { reject: false, env: { PRESSLUFT_HOST: '0.0.0.0', PRESSLUFT_DATA_DIR: dataDir } });
    expect(open.exitCode).toBe(2);
    expect(open.stderr).toContain('CONFIG_INVALID');
    expect(open.stderr).toMatch(/PRESSLUFT_HOST: listening beyond loopback needs TLS/);
    const endpoint = await execa('node', ['bin/pressluft.js', 'serve'], { reject: false, env: { HCLOUD_TOKEN: 't', HCLOUD_ENDPOINT: 'http://api.hetzner.cloud/v1', PRESSLUFT_DATA_DIR: dataDir } });
    expect(endpoint.exitCode).toBe(2);
    expect(endpoint.stderr).toMatch(/HCLOUD_ENDPOINT: must be https:\/\//);
  });

  it('serves until SIGTERM and then stops cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-serve-'));
    const child = execa('node', ['bin/pressluft.js', 'serve'], {
      reject: false,
      env: { NATS_URL: nats.server.url, PRESSLUFT_DATA_DIR: dir, PRESSLUFT_PORT: '0', PRESSLUFT_ROLE: 'api', PRESSLUFT_STREAM: 'SERVE', PRESSLUFT_SUBJECT_PREFIX: 'ps', PRESSLUFT_LOG_LEVEL: 'warn' },
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /API at (http:\/\/\S+);/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      void child.then(() => reject(new Error(`serve exited early: ${out}`)));
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('the API token never comes from argv', () => {
  it('refuses --token without echoing its value', async () => {
    for (const args of [['--token', 'argv-secret-0123456789'], ['--token=argv-secret-0123456789']]) {
      const r = await cli(['node', 'list', ...args]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('error [usage]: --token is not accepted');
      expect(r.stderr).toContain('--token-file');
      expect(`${r.stdout}${r.stderr}`).not.toContain('argv-secret');
    }
  });

  it('reads it from --token-file, --token-stdin or PRESSLUFT_API_TOKEN', async () => {
    const file = join(dataDir, 'cli-token');
    await writeFile(file, `${cp.apiToken}\n`, { mode: 0o600 });
    // The data dir's own token file is out of the way: each source must work on its own.
    const env = { PRESSLUFT_DATA_DIR: join(dataDir, 'elsewhere') };
    expect((await cli(['node', 'list', '--token-file', file], env)).exitCode).toBe(0);
    const stdin = await execa('node', ['bin/pressluft.js', 'node', 'list', '--token-stdin', '--json'], {
      reject: false,
      input: `${cp.apiToken}\n`,
      env: { PRESSLUFT_URL: cp.url ?? '', PRESSLUFT_API_TOKEN: '', ...env },
    });
    expect(stdin.exitCode, stdin.stderr).toBe(0);
    expect(json(stdin)).toMatchObject({ nodes: expect.any(Array) });
    expect((await cli(['node', 'list'], { ...env, PRESSLUFT_API_TOKEN: cp.apiToken })).exitCode).toBe(0);
    expect((await cli(['node', 'list'], env)).stderr).toContain('error [unauthorized]: no API token');
    const missing = await cli(['node', 'list', '--token-file', join(dataDir, 'no-such-file')], env);
    expect([missing.exitCode, missing.stderr]).toEqual([2, expect.stringContaining('--token-file')]);
    const both = await cli(['node', 'list', '--token-file', file, '--token-stdin'], env);
    expect(both.exitCode).toBe(2);
  });
});
