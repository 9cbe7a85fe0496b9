import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/ansible/ansible-errors.ts';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { ansibleEnv, secretsFromEnv } from '../../src/ansible/ansible-env.ts';
import { MAX_ERROR_MESSAGE, summarizeFailure, type FailureFacts } from '../../src/ansible/failure-summary.ts';
import { OutputTail, secretVariants, TAIL_BYTES } from '../../src/ansible/output-tail.ts';
import { parseProgressLine } from '../../src/ansible/progress-event.ts';
import type { Recap } from '../../src/ansible/runner-port.ts';

const recap = (over: Partial<Recap> = {}): Recap => ({ ok: 1, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0, ...over });

describe('classifyRun', () => {
  it.each([
    [0, recap(), null],
    [1, null, 'ANSIBLE_PLAY_ERROR'],
    [2, recap({ failures: 1 }), 'ANSIBLE_HOST_FAILED'],
    [4, recap({ unreachable: 1 }), 'ANSIBLE_HOST_UNREACHABLE'],
    [5, null, 'ANSIBLE_SYNTAX_ERROR'],
    [250, null, 'ANSIBLE_UNEXPECTED_ERROR'],
    [3, null, 'ANSIBLE_UNKNOWN_EXIT'],
    [99, recap(), 'ANSIBLE_UNKNOWN_EXIT'],
  ] as const)('maps exit %i with recap %j to %s', (exitCode, r, code) => {
    expect(classifyRun({ stop: null, exitCode, recap: r })).toBe(code);
  });

  it('trusts the recap over the exit code', () => {
    expect(classifyRun({ stop: null, exitCode: 0, recap: recap({ failures: 1 }) })).toBe('ANSIBLE_HOST_FAILED');
    expect(classifyRun({ stop: null, exitCode: 6, recap: recap({ failures: 1, unreachable: 1 }) })).toBe('ANSIBLE_HOST_UNREACHABLE');
  });

  it('never calls exit 0 without a PLAY RECAP a success', () => {
    expect(classifyRun({ stop: null, exitCode: 0, recap: null })).toBe('ANSIBLE_UNEXPECTED_ERROR');
  });

  it('reads exit 4 without a recap as a parser error (ansible-core 2.14)', () => {
    expect(classifyRun({ stop: null, exitCode: 4, recap: null })).toBe('ANSIBLE_SYNTAX_ERROR');
  });

  it('lets a stop outrank whatever the killed process exited with', () => {
    expect(classifyRun({ stop: 'timeout', exitCode: null, recap: null })).toBe('ANSIBLE_TIMEOUT');
    expect(classifyRun({ stop: 'cancelled', exitCode: 2, recap: recap({ failures: 1 }) })).toBe('ANSIBLE_CANCELLED');
    expect(classifyRun({ stop: null, exitCode: null, recap: null })).toBe('ANSIBLE_UNKNOWN_EXIT');
  });
});

describe('ansibleEnv', () => {
  const parent = {
    PATH: '/usr/bin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    TMPDIR: '/tmp',
    HCLOUD_TOKEN: 'hc-token',
    PRESSLUFT_SECRET_KEY: 'ab'.repeat(32),
    PRESSLUFT_API_TOKEN: 'api-token-0123456789',
    ANSIBLE_BECOME_PASS: 'inherited',
    AWS_SECRET_ACCESS_KEY: 'unrelated',
  };
  const dirs = { config: '/p/ansible.cfg', localTemp: '/r/t', controlPathDir: '/r/cp' };

  it('passes only the allowlist and what the runner sets, never a secret', () => {
    expect(ansibleEnv({ ...dirs, authSock: '/r/agent.sock', progressFd: 3 }, parent)).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TMPDIR: '/tmp',
      ANSIBLE_CONFIG: '/p/ansible.cfg',
      ANSIBLE_LOCAL_TEMP: '/r/t',
      ANSIBLE_SSH_CONTROL_PATH_DIR: '/r/cp',
      ANSIBLE_NOCOLOR: '1',
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      SSH_AUTH_SOCK: '/r/agent.sock',
      PRESSLUFT_PROGRESS_FD: '3',
    });
  });

  it('gives a PATH even when the parent has none', () => {
    expect(ansibleEnv(dirs, {}).PATH).toBe('/usr/local/bin:/usr/bin:/bin');
  });

  it('reads the values of the three secret variables that are set', () => {
    expect(secretsFromEnv(parent)).toEqual(['hc-token', 'ab'.repeat(32), 'api-token-0123456789']);
    expect(secretsFromEnv({ HCLOUD_TOKEN: '' })).toEqual([]);
  });
});

describe('summarizeFailure', () => {
  const facts = (over: Partial<FailureFacts>): FailureFacts => ({
    errorCode: 'ANSIBLE_HOST_FAILED',
    exitCode: 2,
    host: '203.0.113.7',
    failed: null,
    lastTask: null,
    errorLine: null,
    timeoutMs: 1_800_000,
    ...over,
  });

  it('names the failing task, the host and the module message on one redacted line', () => {
    const line = summarizeFailure(facts({ failed: { task: 'php : Install', status: 'failed', message: 'No package\nmatching s3cret-pw\n' } }), ['s3cret-pw']);
    expect(line).toBe('task "php : Install" failed on 203.0.113.7: No package matching [redacted]');
  });

  it('gives the ssh reason for an unreachable host', () => {
    const message = 'Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 4: Connection refused';
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_HOST_UNREACHABLE', exitCode: 4, failed: { task: 'Gathering Facts', status: 'unreachable', message } }), [])).toBe(
      `203.0.113.7 unreachable at task "Gathering Facts": ${message}`,
    );
  });

  it('drops the new-host-key warning that precedes the ssh reason', () => {
    const message = "Failed to connect to the host via ssh: Warning: Permanently added '[127.0.0.1]:2299' (ED25519) to the list of known hosts.\r\nroot@127.0.0.1: Permission denied (publickey,password).";
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_HOST_UNREACHABLE', exitCode: 4, failed: { task: 'Copy', status: 'unreachable', message } }), [])).toBe(
      '203.0.113.7 unreachable at task "Copy": Failed to connect to the host via ssh: root@127.0.0.1: Permission denied (publickey,password).',
    );
  });

  it('cuts at 300 characters, after redacting, so a secret is never half-shown', () => {
    const secret = 'x'.repeat(40);
    const line = summarizeFailure(facts({ failed: { task: 't', status: 'failed', message: `${'a'.repeat(280)}${secret}${'b'.repeat(500)}` } }), [secret]);
    expect(line).toHaveLength(MAX_ERROR_MESSAGE);
    expect(line.endsWith('…')).toBe(true);
    expect(line).not.toContain('xxxxxxxx');
  });

  it('says what ended a run that no task failed', () => {
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_TIMEOUT', exitCode: null, lastTask: 'Sleep', timeoutMs: 20_000 }), [])).toBe('timed out after 20 s during task "Sleep"');
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_CANCELLED', exitCode: null }), [])).toBe('cancelled');
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_SYNTAX_ERROR', exitCode: 4, errorLine: 'ERROR! conflicting action statements: debug, command' }), [])).toBe(
      'ERROR! conflicting action statements: debug, command',
    );
    expect(summarizeFailure(facts({ errorCode: 'ANSIBLE_UNKNOWN_EXIT', exitCode: 3 }), [])).toBe('ansible-playbook exited with an undocumented code or signal (exit 3)');
  });
});

describe('OutputTail', () => {
  it('keeps only the last 10 KB', () => {
    const tail = new OutputTail([]);
    for (let i = 0; i < 2_000; i++) tail.push(`line ${i} ${'x'.repeat(20)}`);
    const text = tail.text();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(TAIL_BYTES);
    expect(Buffer.byteLength(text)).toBeGreaterThan(TAIL_BYTES - 40);
    expect(text.endsWith(`line 1999 ${'x'.repeat(20)}`)).toBe(true);
    expect(text).not.toContain('line 0 ');
  });

  it('redacts secrets verbatim, JSON-escaped and line by line', () => {
    const key = '-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\nEEEEFFFFGGGGHHHH\n-----END KEY-----';
    const tail = new OutputTail(secretVariants(['pa"ss', key]));
    tail.push('password pa"ss');
    tail.push('{"msg": "pa\\"ss"}');
    tail.push('line EEEEFFFFGGGGHHHH');
    expect(tail.text()).toBe('password [redacted]\n{"msg": "[redacted]"}\nline [redacted]');
  });
});

describe('parseProgressLine', () => {
  it('accepts the plugin events and rejects anything else', () => {
    expect(parseProgressLine('{"event":"task","task":"t","host":"h","status":"changed","handler":false}')).toMatchObject({ status: 'changed' });
    expect(parseProgressLine('{"event":"task","task":"t","host":"h","status":"failed","handler":false,"message":"m"}')).toMatchObject({ message: 'm' });
    expect(parseProgressLine('{"event":"play","tasks":12}')).toEqual({ event: 'play', tasks: 12 });
    expect(parseProgressLine('{"event":"task","task":"t","host":"h","status":"weird","handler":false}')).toBeNull();
    expect(parseProgressLine('not json')).toBeNull();
  });
});

describe('AnsiblePlaybookRunner', () => {
  it('refuses a temp root with whitespace, which would split its ssh options', () => {
    expect(() => new AnsiblePlaybookRunner({ logger: createLogger('silent'), tmpRoot: '/tmp/with space' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new AnsiblePlaybookRunner({ logger: createLogger('silent'), tmpRoot: '/tmp' })).not.toThrow();
  });
});
