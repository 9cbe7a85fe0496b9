import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toAppError } from '../../src/ansible/ansible-errors.ts';
import type { TaskProgress } from '../../src/ansible/runner-port.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { closedLoopbackPort, harness, localNode, survivorsOfGroup, waitForFile } from './runner-harness.ts';

// Real ansible-playbook against the control plane itself (ansible_connection=local), with the
// tiny playbooks in test/fixtures/playbooks.
const playbook = (name: string) => `test/fixtures/playbooks/${name}.yml`;
const SECRET = 'hunter2-db-password-7f3a';
const KEY = generateOpenSshEd25519('pressluft-test').privateKey;
const MULTILINE_SECRET = ['-----BEGIN SOME SECRET-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ', 'QyNTUxOQAAACBzZWNyZXRrZXlzZWNyZXRrZXlzZWNy', '-----END SOME SECRET-----'].join('\n');
/** One line, at most 300 characters: what `errorMessage` promises. */
const ONE_LINE = /^[^\n]{1,300}$/;
/** `ansible-playbook --list-tasks` lines: "      <task>\tTAGS: [...]". */
const countListedTasks = (output: string): number => output.split('\n').filter((line) => /^ {6}\S.*\tTAGS: \[/.test(line)).length;

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
      privateKey: KEY,
      timeoutMs: 60_000,
      onProgress: (p) => {
        progress.push(p);
        if (progress.length > 1) return;
        // Sampled while the run is in flight: exactly one run dir, private, with private files.
        const dirs = readdirSync(h.tmpRoot);
        expect(dirs).toHaveLength(1);
        const path = join(h.tmpRoot, dirs[0] ?? '');
        modes.dir = statSync(path).mode & 0o777;
        for (const f of ['inventory.ini', 'vars.yml', 'id_control_plane.pub', 'agent.sock']) modes[f] = statSync(join(path, f)).mode & 0o777;
        // The key lives in the run's ssh-agent: no private key file in the run dir.
        modes.keyFiles = readdirSync(path).filter((f) => f.startsWith('id_') && !f.endsWith('.pub')).length;
      },
    });

    expect(result).toMatchObject({ ok: true, exitCode: 0, errorCode: null, retryable: false });
    expect(result.recap).toMatchObject({ ok: 2, changed: 1, skipped: 1, failures: 0, unreachable: 0 });
    expect(progress.map((p) => [p.index, p.total, p.task, p.status])).toEqual([
      [1, 3, 'Report a greeting', 'ok'],
      [2, 3, "Change something in the run's temp dir", 'changed'],
      [3, 3, 'Skip this one', 'skipped'],
    ]);
    expect(modes).toEqual({ dir: 0o700, 'inventory.ini': 0o600, 'vars.yml': 0o600, 'id_control_plane.pub': 0o600, 'agent.sock': 0o600, keyFiles: 0 });
    expect(await h.runDirs()).toEqual([]);
    expect(result.outputTail).toContain('PLAY RECAP');
    expect(result.errorMessage).toBeUndefined();
    expect(h.log()).toContain('TASK [Report a greeting]');
  });

  it('reports a failed task as ANSIBLE_HOST_FAILED with a one-line message, a redacted tail, log and progress', async () => {
    const progress: TaskProgress[] = [];
    const result = await h.runner.run({
      playbook: playbook('fail'),
      node: localNode,
      vars: { db_password: SECRET, multiline_secret: MULTILINE_SECRET },
      privateKey: KEY,
      secrets: [SECRET, MULTILINE_SECRET],
      timeoutMs: 60_000,
      onProgress: (p) => progress.push(p),
    });

    expect(result).toMatchObject({ ok: false, exitCode: 2, errorCode: 'ANSIBLE_HOST_FAILED', retryable: true });
    expect(result.recap.failures).toBe(1);
    expect(result.errorMessage).toBe('task "Fail for [redacted]" failed on 127.0.0.1: cannot continue with password [redacted]');
    expect(result.outputTail).toContain('cannot continue with password [redacted]');
    // One ansible-playbook process: no --list-tasks listing ahead of the run in the tail.
    expect(result.outputTail).not.toMatch(/TAGS: \[|^playbook: /m);
    for (const text of [result.outputTail, result.errorMessage ?? '', h.log()]) {
      expect(text).not.toContain(SECRET);
      for (const secretLine of MULTILINE_SECRET.split('\n').slice(1, 3)) expect(text).not.toContain(secretLine);
    }
    expect(progress.map((p) => [p.task, p.status])).toEqual([
      ['Echo a multi-line secret', 'ok'],
      ['Fail for [redacted]', 'failed'],
    ]);
    expect(toAppError(result)).toMatchObject({ code: 'ANSIBLE_HOST_FAILED', retryable: true });
    expect(await h.runDirs()).toEqual([]);
  });

  it('reports a loopback port nobody listens on as ANSIBLE_HOST_UNREACHABLE, with the ssh reason', async () => {
    const port = await closedLoopbackPort();
    const result = await h.runner.run({
      playbook: playbook('succeed'),
      node: { host: '127.0.0.1', port, user: 'root' },
      vars: { scratch_dir: h.scratch, greeting: 'hi' },
      privateKey: KEY,
      timeoutMs: 60_000,
    });

    expect(result).toMatchObject({ ok: false, exitCode: 4, errorCode: 'ANSIBLE_HOST_UNREACHABLE', retryable: true });
    expect(result.recap.unreachable).toBe(1);
    expect(result.outputTail).toContain('Connection refused');
    expect(result.errorMessage).toMatch(ONE_LINE);
    // debug runs on the controller; the copy is the first task that needs the connection.
    expect(result.errorMessage).toMatch(new RegExp(`^127\\.0\\.0\\.1 unreachable at task "Change something in the run's temp dir": .*port ${port}: Connection refused$`));
  });

  it('counts M in the callback exactly as --list-tasks does, for the real provisioning playbook', async () => {
    const provision = 'ansible/playbooks/node-provision.yml';
    const listed = spawnSync('ansible-playbook', ['-i', 'node,', '--list-tasks', provision], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ANSIBLE_CONFIG: 'ansible/ansible.cfg' },
    });
    expect(listed.status).toBe(0);
    const expected = countListedTasks(listed.stdout);
    expect(expected).toBeGreaterThan(20);
    // Against a closed loopback port: the play starts (and is counted), then its first task is unreachable.
    const progress: TaskProgress[] = [];
    const result = await h.runner.run({
      playbook: provision,
      node: { host: '127.0.0.1', port: await closedLoopbackPort(), user: 'root' },
      vars: {},
      timeoutMs: 60_000,
      onProgress: (p) => progress.push(p),
    });

    expect(result.errorCode).toBe('ANSIBLE_HOST_UNREACHABLE');
    expect(progress[0]).toMatchObject({ index: 1, total: expected, status: 'unreachable' });
  }, 60_000);

  it('reports a playbook that does not parse as ANSIBLE_SYNTAX_ERROR, not retryable', async () => {
    const result = await h.runner.run({ playbook: playbook('syntax-error'), node: localNode, vars: {}, timeoutMs: 60_000 });

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_SYNTAX_ERROR', retryable: false });
    expect(result.outputTail).toContain('conflicting action statements');
    expect(result.errorMessage).toMatch(ONE_LINE);
    expect(result.errorMessage).toMatch(/^ERROR! conflicting action statements/);
    expect(await h.runDirs()).toEqual([]);
  });

  it('kills the whole process group on timeout and reports ANSIBLE_TIMEOUT', async () => {
    // Generous: on a busy 2-core CI machine ansible-playbook alone may need seconds to start.
    const run = h.runner.run({ playbook: playbook('sleep'), node: localNode, vars: { scratch_dir: h.scratch }, timeoutMs: 45_000 });
    // The run's timeout is longer than this wait, so the group is seen alive before the timeout kills it.
    const pgid = Number(await waitForFile(join(h.scratch, 'pgid'), 40_000));
    expect(pgid).not.toBe(process.pid);
    expect(await survivorsOfGroup(pgid)).not.toEqual([]);

    const result = await run;

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_TIMEOUT', retryable: true, errorMessage: 'timed out after 45 s during task "Record the process group, then sleep"' });
    expect(await survivorsOfGroup(pgid)).toEqual([]);
    expect(await h.runDirs()).toEqual([]);
  }, 90_000);

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

    expect(result).toMatchObject({ ok: false, errorCode: 'ANSIBLE_CANCELLED', retryable: false, errorMessage: 'cancelled during task "Record the process group, then sleep"' });
    expect(await survivorsOfGroup(pgid)).toEqual([]);
    expect(await h.runDirs()).toEqual([]);
  }, 60_000);

  it('refuses extra-vars that would steer the connection', async () => {
    await expect(
      h.runner.run({ playbook: playbook('succeed'), node: localNode, vars: { ansible_host: 'elsewhere' }, timeoutMs: 1_000 }),
    ).rejects.toThrow(/ansible_/);
  });
});
