import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { BUNDLE, TOKEN, useApi } from '../api/api-harness.ts';
import { failOnHostKeyThrough, KEY_A, KEY_B, OUTPUT_TAIL } from '../api/host-key-run.ts';

/**
 * The CLI of issues 10 and 12 (trust-host-key, --expect-playbook, job get/log, version, the
 * timeline), run in-process against the real API on a loopback port: no dist build needed.
 */
const h = useApi();
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = h.app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('not listening');
  env = { PRESSLUFT_URL: `http://127.0.0.1:${addr.port}`, PRESSLUFT_API_TOKEN: TOKEN };
});

const sink = () => {
  let text = '';
  return { stream: new Writable({ write: (c: Buffer, _e, done) => ((text += c.toString()), done()) }), text: () => text };
};
const cli = async (...argv: string[]) => {
  const [out, err] = [sink(), sink()];
  const code = await runCli(argv, { stdout: out.stream, stderr: err.stream }, env);
  return { code, stdout: out.text(), stderr: err.text() };
};

describe('pressluft CLI: host keys and what ran', () => {
  it('job get shows the one-line summary and what ran, not the output tail; job log prints the tail', async () => {
    const { jobId, nodeId, position } = await failOnHostKeyThrough(h, 'cli-mitm');
    expect(await h.projector.waitFor(position, 30_000)).toBe(true);
    const got = await cli('job', 'get', jobId, '--min-position', String(position));
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/status:\s+failed/);
    expect(got.stdout).toMatch(/step:\s+done/);
    expect(got.stdout).toMatch(/attempt:\s+1 of 3/);
    expect(got.stdout).toMatch(/error:\s+ANSIBLE_HOST_KEY_MISMATCH/);
    expect(got.stdout).toContain(`host key mismatch: the node presented ${KEY_B.fingerprint}, expected ${KEY_A.fingerprint}`);
    expect(got.stdout).toContain(`bundle ${BUNDLE.digest}, version ${BUNDLE.version}`);
    expect(got.stdout).toMatch(new RegExp(`host key:\\s+${KEY_A.fingerprint.replace(/[+/]/g, '\\$&')}`));
    expect(got.stdout).toContain(`pressluft node trust-host-key ${nodeId} --fingerprint ${KEY_B.fingerprint}`);
    expect(got.stdout).not.toContain('REMOTE HOST IDENTIFICATION');
    expect(got.stdout).toContain(`pressluft job log ${jobId}`);

    const log = await cli('job', 'log', jobId);
    expect(log.code).toBe(0);
    expect(log.stdout).toBe(`${OUTPUT_TAIL}\n`);
  });

  it('trust-host-key refuses a malformed fingerprint before any request, a wrong one with the API code, and trusts the seen one', async () => {
    const { nodeId } = await failOnHostKeyThrough(h, 'cli-trust');
    const before = await h.store.version(nodeId);
    const malformed = await cli('node', 'trust-host-key', nodeId, '--fingerprint', 'b7:2f:30');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('error [usage]');
    const missing = await cli('node', 'trust-host-key', nodeId);
    expect(missing.code).toBe(2);
    const wrong = await cli('node', 'trust-host-key', nodeId, '--fingerprint', KEY_A.fingerprint);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('error [host_key_not_seen]');
    expect(await h.store.version(nodeId)).toBe(before);

    const ok = await cli('node', 'trust-host-key', nodeId, '--fingerprint', KEY_B.fingerprint);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`host key ${KEY_B.fingerprint} trusted for node ${nodeId}`);

    const history = await cli('node', 'history', nodeId);
    expect(history.stdout).toMatch(new RegExp(`api:default .*HostKeyTrusted .*trusted by api:default \\(was ${KEY_A.fingerprint.replace(/[+/]/g, '\\$&')}\\)`));
    expect(history.stdout).toContain(`Ansible started: ansible/playbooks/node-provision.yml (bundle ${BUNDLE.digest.slice(0, 12)}, version ${BUNDLE.version}, trusting host key ${KEY_A.fingerprint})`);
    expect(history.stdout).toContain(`host key ${KEY_B.fingerprint} presented, ${KEY_A.fingerprint} expected`);
    expect(history.stdout).toContain(`server create requested: pl-cli-trust with host key ${KEY_A.fingerprint}`);
  });

  it('version prints the digest that --expect-playbook takes; a stale one is refused and nothing is appended', async () => {
    const version = await cli('version');
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`pressluft ${BUNDLE.version}\nplaybook bundle ${BUNDLE.digest}\n`);

    const before = await h.store.lastPosition();
    const stale = await cli('node', 'create', '--name', 'cli-stale', '--type', 'cx22', '--location', 'fsn1', '--expect-playbook', '0'.repeat(64));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('error [playbook_digest_mismatch]');
    const malformed = await cli('node', 'create', '--name', 'cli-stale', '--type', 'cx22', '--location', 'fsn1', '--expect-playbook', 'abc');
    expect(malformed.code).toBe(2);
    expect(await h.store.lastPosition()).toBe(before);

    const created = await cli('node', 'create', '--name', 'cli-fresh', '--type', 'cx22', '--location', 'fsn1', '--expect-playbook', BUNDLE.digest, '--json');
    expect(created.code, created.stderr).toBe(0);
    const { nodeId } = JSON.parse(created.stdout) as { nodeId: string };
    expect((await h.repo.history(nodeId))[0]).toMatchObject({ data: { expectPlaybook: BUNDLE.digest } });
  });

  it('node provision --expect-playbook refuses a stale digest and queues with the current one', async () => {
    const { nodeId } = await failOnHostKeyThrough(h, 'cli-reprov');
    const stale = await cli('node', 'provision', nodeId, '--expect-playbook', '0'.repeat(64));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('error [playbook_digest_mismatch]');
    const ok = await cli('node', 'provision', nodeId, '--expect-playbook', BUNDLE.digest, '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect((await h.repo.history(nodeId)).at(-1)).toMatchObject({ type: 'ProvisionRequested', data: { reprovision: true, expectPlaybook: BUNDLE.digest } });
  });
});
