import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunDir } from '../../src/ansible/run-dir.ts';
import type { RunRequest, RunResult } from '../../src/ansible/runner-port.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { filesContaining, harness, localNode, processesMentioning, survivorsOfGroup, waitForFile } from './runner-harness.ts';

// Issue 9, item 7: the private key lives in a per-run ssh-agent, never in a file, and nothing of
// a run (files, agent, ansible) outlives it, however it ends.
const KEY = generateOpenSshEd25519('pressluft-test').privateKey;
/** The base64 body lines of the key: what key material on disk would contain. */
const KEY_LINES = KEY.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
const playbook = (name: string) => `test/fixtures/playbooks/${name}.yml`;

const waitUntil = async (check: () => Promise<boolean>, ms: number, what: string) => {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} within ${ms} ms`);
    await sleep(100);
  }
};

describe('a run leaves no key material and no process behind', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(() => h.cleanup());

  /** Runs `req` with the key; samples, while it runs, the agent and the files under the run root. */
  const runAndWatch = async (req: Omit<RunRequest, 'privateKey'>, stop?: (pgid: number) => void): Promise<{ result: RunResult; agents: string[]; keyFiles: string[] }> => {
    const seen = { agents: [] as string[], keyFiles: [] as string[] };
    const sample = async () => {
      seen.agents.push(...(await processesMentioning(h.tmpRoot)).map((p) => p.comm));
      seen.keyFiles.push(...(await filesContaining(h.tmpRoot, KEY_LINES)));
    };
    const run = h.runner.run({ ...req, privateKey: KEY });
    if (stop) {
      const pgid = Number(await waitForFile(join(h.scratch, 'pgid'), 30_000));
      await sample();
      stop(pgid);
    }
    const result = await run;
    return { result, ...seen };
  };

  const expectNothingLeft = async () => {
    expect(await readdir(h.tmpRoot)).toEqual([]);
    expect(await processesMentioning(h.tmpRoot)).toEqual([]);
  };

  it('after a success and after a failure', async () => {
    const ok = await runAndWatch({ playbook: playbook('succeed'), node: localNode, vars: { scratch_dir: h.scratch, greeting: 'hi' }, timeoutMs: 60_000 });
    expect(ok.result.errorCode).toBeNull();
    await expectNothingLeft();

    const failed = await runAndWatch({ playbook: playbook('fail'), node: localNode, vars: { db_password: 'x', multiline_secret: 'y' }, timeoutMs: 60_000 });
    expect(failed.result.errorCode).toBe('ANSIBLE_HOST_FAILED');
    await expectNothingLeft();
  }, 90_000);

  it('after a timeout, and the key was only ever in the agent while the run lived', async () => {
    // Generous: on a busy 2-core machine ansible-playbook alone may need many seconds to start.
    const { result, agents, keyFiles } = await runAndWatch({ playbook: playbook('sleep'), node: localNode, vars: { scratch_dir: h.scratch }, timeoutMs: 40_000 }, () => undefined);

    expect(result.errorCode).toBe('ANSIBLE_TIMEOUT');
    // Sampled mid-run: the agent was there (so the check below can see one), and no file held the key.
    expect(agents).toContain('ssh-agent');
    expect(keyFiles).toEqual([]);
    await expectNothingLeft();
  }, 120_000);

  it('after a cancel', async () => {
    const abort = new AbortController();
    const { result, agents, keyFiles } = await runAndWatch(
      { playbook: playbook('sleep'), node: localNode, vars: { scratch_dir: h.scratch }, timeoutMs: 60_000, signal: abort.signal },
      () => abort.abort(),
    );

    expect(result.errorCode).toBe('ANSIBLE_CANCELLED');
    expect(agents).toContain('ssh-agent');
    expect(keyFiles).toEqual([]);
    await expectNothingLeft();
  }, 60_000);

  it('after its control plane is SIGKILLed: the agent dies with it, and the start-up sweep ends the rest', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/ansible/runner-child.ts'], {
      env: { ...process.env, RUN_ROOT: h.tmpRoot, SCRATCH: h.scratch },
      stdio: ['pipe', 'inherit', 'inherit'],
    });
    child.stdin.end(KEY);
    const pgid = Number(await waitForFile(join(h.scratch, 'pgid'), 60_000));
    expect((await processesMentioning(h.tmpRoot)).map((p) => p.comm)).toContain('ssh-agent');
    expect(await filesContaining(h.tmpRoot, KEY_LINES)).toEqual([]);

    child.kill('SIGKILL');
    // The agent's keeper sees its stdin close: the agent, and with it the key, is gone at once.
    await waitUntil(async () => !(await processesMentioning(h.tmpRoot)).some((p) => p.comm === 'ssh-agent'), 15_000, 'the ssh-agent outlived its control plane');
    // ansible-playbook leads its own process group, so it is still running, orphaned, in its run dir.
    expect(await survivorsOfGroup(pgid)).not.toEqual([]);
    const [dir] = await readdir(h.tmpRoot);

    expect(await RunDir.sweepAbandoned(h.tmpRoot, Date.now(), 1_000)).toBe(1);

    expect(await survivorsOfGroup(pgid)).toEqual([]);
    expect(existsSync(join(h.tmpRoot, dir ?? 'missing'))).toBe(false);
    await expectNothingLeft();
  }, 90_000);
});
