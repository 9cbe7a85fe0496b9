import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toAppError } from '../../src/ansible/ansible-errors.ts';
import type { TaskProgress } from '../../src/ansible/runner-port.ts';
import { closedLoopbackPort, harness, localNode, survivorsOfGroup, waitForFile } from './runner-harness.ts';

// Real ansible-playbook against the control plane itself (ansible_connection=local), with the
// tiny playbooks in test/fixtures/playbooks.
const playbook = (name: string) => `test/fixtures/playbooks/${name}.yml`;
const SECRET = 'hunter2-db-password-7f3a';
const FAKE_KEY = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', 'QyNTUxOQAAACBzZWNyZXRrZXlzZWNyZXRrZXlzZWNyZXRrZXlzZWNyZXQAAAAA', '-----END OPENSSH PRIVATE KEY-----'].join('\n');

describe('AnsiblePlaybookRunner', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(() => h.cleanup());

  it('succeeds, reports progress N of M in order, and keeps the temp dir private while it exists', async () => {
    const progress: TaskProgress[] = [];
    const modes: Record<string, number> = {};
    const result = await h.runner.run({
      playbook: playbook('succeed'),
      node: localNode,
      vars: { scratch_dir: h.scratch, greeting: 'hi' },
      privateKey: FAKE_KEY,
      timeoutMs: 60_000,
      onProgress: (p) => {
        progress.push(p);
        if (progress.length > 1) return;
        // Sampled while the run is in flight: exactly one run dir, private, with private files.
        const dirs = readdirSync(h.tmpRoot);
        expect(dirs).toHaveLength(1);
        const path = join(h.tmpRoot, dirs[0] ?? '');
        modes.dir = statSync(path).mode & 0o777;
        for (const f of ['inventory.ini', 'vars.json', 'id_control_plane']) modes[f] = statSync(join(path, f)).mode & 0o777;
      },
    });

    expect(result).toMatchObject({ ok: true, exitCode: 0, errorCode: null, retryable: false });
    expect(result.recap).toMatchObject({ ok: 2, changed: 1, skipped: 1, failures: 0, unreachable: 0 });
    expect(progress.map((p) => [p.index, p.total, p.task, p.status])).toEqual([
      [1, 3, 'Report a greeting', 'ok'],
      [2, 3, "Change something in the run's temp dir", 'changed'],
      [3, 3, 'Skip this one', 'skipped'],
    ]);
    expect(modes).toEqual({ dir: 0o700, 'inventory.ini': 0o600, 'vars.json': 0o600, id_control_plane: 0o600 });
    expect(await h.runDirs()).toEqual([]);
    expect(result.outputTail).toContain('PLAY RECAP');
    expect(h.log()).toContain('TASK [Report a greeting]');
  });

  it('reports a failed task as ANSIBLE_HOST_FAILED with a redacted tail, log and progress', async () => {
    const progress: TaskProgress[] = [];
    const result = await h.runner.run({
      playbook: playbook('fail'),
      node: localNode,
      vars: { db_password: SECRET },
      privateKey: FAKE_KEY,
      secrets: [SECRET],
      timeoutMs: 60_000,
      onProgress: (p) => progress.push(p),
    });

    expect(result).toMatchObject({ ok: false, exitCode: 2, errorCode: 'ANSIBLE_HOST_FAILED', retryable: true });
    expect(result.recap.failures).toBe(1);
    expect(result.outputTail).toContain('cannot continue with password [redacted]');
    for (const text of [result.outputTail, h.log()]) {
      expect(text).not.toContain(SECRET);
      for (const keyLine of FAKE_KEY.split('\n').slice(1, 3)) expect(text).not.toContain(keyLine);
    }
    expect(progress.map((p) => [p.task, p.status])).toEqual([
      ['Echo the private key', 'ok'],
      ['Fail for [redacted]', 'failed'],
    ]);
    expect(toAppError(result)).toMatchObject({ code: 'ANSIBLE_HOST_FAILED', retryable: true });
    expect(await h.runDirs()).toEqual([]);
  });

  it('reports a loopback port nobody listens on as ANSIBLE_HOST_UNREACHABLE', async () => {
    const port = await closedLoopbackPort();
    const result = await h.runner.run({
      playbook: playbook('succeed'),
      node: { host: '127.0.0.1', port, user: 'root' },
      vars: { scratch_dir: h.scratch, greeting: 'hi' },
      timeoutMs: 60_000,
    });

    expect(result).toMatchObject({ ok: false, exitCode: 4, errorCode: 'ANSIBLE_HOST_UNREACHABLE', retryable: true });
    expect(result.recap.unreachable).toBe(1);
    expect(result.outputTail).toContain('Connection refused');
  });

  it('reports a playbook that does not parse as ANSIBLE_SYNTAX_ERROR, not retryable', async () => {
    const result = await h.runner.run({ playbook: playbook('syntax-error'), node: localNode, vars: {}, timeoutMs: 60_000 });

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false });
    expect(result.outputTail).toContain('conflicting action statements');
    expect(await h.runDirs()).toEqual([]);
  });

  it('kills the whole process group on timeout and reports ANSIBLE_TIMEOUT', async () => {
    // Generous: on a busy 2-core CI machine ansible-playbook alone may need seconds to start.
    const run = h.runner.run({ playbook: playbook('sleep'), node: localNode, vars: { scratch_dir: h.scratch }, timeoutMs: 20_000 });
    const pgid = Number(await waitForFile(join(h.scratch, 'pgid'), 20_000));
    expect(pgid).not.toBe(process.pid);
    expect(await survivorsOfGroup(pgid)).not.toEqual([]);

    const result = await run;

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_TIMEOUT', retryable: true });
    expect(await survivorsOfGroup(pgid)).toEqual([]);
    expect(await h.runDirs()).toEqual([]);
  }, 60_000);

  it('kills the whole process group on abort and reports ANSIBLE_CANCELLED', async () => {
    const abort = new AbortController();
    const run = h.runner.run({
      playbook: playbook('sleep'),
      node: localNode,
      vars: { scratch_dir: h.scratch },
      timeoutMs: 60_000,
      signal: abort.signal,
    });
    const pgid = Number(await waitForFile(join(h.scratch, 'pgid'), 30_000));
    expect(await survivorsOfGroup(pgid)).not.toEqual([]);
    abort.abort();

    const result = await run;

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_CANCELLED', retryable: false });
    expect(await survivorsOfGroup(pgid)).toEqual([]);
    expect(await h.runDirs()).toEqual([]);
  }, 60_000);

  it('refuses extra-vars that would steer the connection', async () => {
    await expect(
      h.runner.run({ playbook: playbook('succeed'), node: localNode, vars: { ansible_host: 'elsewhere' }, timeoutMs: 1_000 }),
    ).rejects.toThrow(/ansible_/);
  });
});
