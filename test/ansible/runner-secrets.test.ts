import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventDecodeError, decodeDecision } from '../../src/events/event-codec.ts';
import { event, nodeEventSchema } from '../../src/events/node-events.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { policy, spec } from '../support/node-fixtures.ts';
import { harness, localNode } from './runner-harness.ts';

// Real ansible-playbook, connection local: the runner's environment and extra-vars as Ansible
// itself sees them (issue 9, item 6).
const playbook = (name: string) => `test/fixtures/playbooks/${name}.yml`;
const KEY = generateOpenSshEd25519('pressluft-test').privateKey;
const SECRETS = {
  HCLOUD_TOKEN: `hc-${randomBytes(16).toString('hex')}`,
  PRESSLUFT_SECRET_KEY: randomBytes(32).toString('hex'),
  PRESSLUFT_API_TOKEN: `api-${randomBytes(16).toString('hex')}`,
};
const saved: Record<string, string | undefined> = {};

beforeAll(() => {
  for (const [name, value] of Object.entries(SECRETS)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  // Something unrelated that a blocklist would let through.
  process.env.PRESSLUFT_UNRELATED_SETTING = 'must-not-pass';
});
afterAll(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  delete process.env.PRESSLUFT_UNRELATED_SETTING;
});

describe('the environment ansible-playbook sees', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(() => h.cleanup());

  it('holds no secret and nothing outside the allowlist, on the controller or in modules', async () => {
    const result = await h.runner.run({ playbook: playbook('dump-env'), node: localNode, vars: { scratch_dir: h.scratch }, privateKey: KEY, timeoutMs: 60_000 });
    expect(result).toMatchObject({ ok: true, errorCode: null });

    const moduleEnv = await readFile(join(h.scratch, 'module-env'), 'utf8');
    const names = moduleEnv.split('\n').map((l) => l.split('=')[0]);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(names).not.toContain(name);
      expect(moduleEnv).not.toContain(value);
    }
    expect(moduleEnv).not.toContain('PRESSLUFT_UNRELATED_SETTING');
    // The run's own variables did arrive, so the dump is of the right process tree.
    expect(names).toEqual(expect.arrayContaining(['PATH', 'ANSIBLE_CONFIG', 'SSH_AUTH_SOCK']));

    const lookups = await readFile(join(h.scratch, 'lookup-env'), 'utf8');
    expect(lookups).toBe(`|||${process.env.PATH}`);
  });

  it('redacts the values of all three secrets from the tail, the error message and the log', async () => {
    const leaked = Object.values(SECRETS).join(' ');
    const result = await h.runner.run({
      playbook: playbook('fail'),
      node: localNode,
      vars: { db_password: leaked, multiline_secret: 'nothing secret here' },
      timeoutMs: 60_000,
    });

    expect(result.errorCode).toBe('ANSIBLE_HOST_FAILED');
    expect(result.errorMessage).toBe('task "Fail for [redacted] [redacted] [redacted]" failed on 127.0.0.1: cannot continue with password [redacted] [redacted] [redacted]');
    for (const text of [result.outputTail, result.errorMessage ?? '', h.log()]) {
      for (const value of Object.values(SECRETS)) expect(text).not.toContain(value);
    }
    expect(result.outputTail).toContain('cannot continue with password [redacted] [redacted] [redacted]');
  });
});

describe('extra-vars are data, never templates', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(() => h.cleanup());

  it('passes a lookup in a var through literally and never runs it', async () => {
    const pwned = join(h.scratch, `pressluft-pwned-${randomBytes(6).toString('hex')}`);
    const payload = `{{ lookup('pipe', 'touch ${pwned}') }}`;
    const nested = { [`k{{ lookup('pipe', 'touch ${pwned}-key') }}`]: [`{% if true %}{{ lookup('pipe', 'touch ${pwned}-list') }}{% endif %}`, 7, true, null] };

    const result = await h.runner.run({
      playbook: playbook('echo-vars'),
      node: localNode,
      vars: { scratch_dir: h.scratch, payload, nested },
      timeoutMs: 60_000,
    });

    expect(result).toMatchObject({ ok: true, errorCode: null });
    expect(await readFile(join(h.scratch, 'payload'), 'utf8')).toBe(payload);
    expect(JSON.parse(await readFile(join(h.scratch, 'nested.json'), 'utf8'))).toEqual(nested);
    expect(result.outputTail).toContain(`TASK [Print ${payload}]`);
    for (const suffix of ['', '-key', '-list']) expect(existsSync(`${pwned}${suffix}`)).toBe(false);
  });

  it('carries strings YAML could not hold raw, quotes and newlines unchanged', async () => {
    const payload = `a "quoted" 'single' \\ back\nnew line\ttab \u007f del \u0085 nel \u2028 ls \u2029 ps \u009f c1 \ufffe ü 😀 !unsafe *alias &anchor`;
    const result = await h.runner.run({
      playbook: playbook('echo-vars'),
      node: localNode,
      vars: { scratch_dir: h.scratch, payload, nested: { n: 1.5, big: 1e21, neg: -3 } },
      timeoutMs: 60_000,
    });

    expect(result).toMatchObject({ ok: true, errorCode: null });
    expect(await readFile(join(h.scratch, 'payload'), 'utf8')).toBe(payload);
    expect(JSON.parse(await readFile(join(h.scratch, 'nested.json'), 'utf8'))).toEqual({ n: 1.5, big: 1e21, neg: -3 });
  });

  it('refuses extra-var names that are not identifiers', async () => {
    await expect(h.runner.run({ playbook: playbook('echo-vars'), node: localNode, vars: { '{{ x }}': 1 }, timeoutMs: 1_000 })).rejects.toThrow(/identifiers/);
  });
});

describe("the node spec in the event log enforces the API's rules", () => {
  const requested = (over: Partial<ReturnType<typeof spec>>) =>
    event('ProvisionRequested', { nodeId: 'n_1', jobId: 'j_1', ...spec(over), maxAttempts: 3, policy: policy(), reprovision: false });

  it.each([
    ['a templating node name', { name: "{{ lookup('pipe','id') }}" }],
    ['an upper-case or underscored name', { name: 'Web_1' }],
    ['a name with a space', { name: 'web 1' }],
    ['a label over 63 characters', { name: 'a'.repeat(64) }],
    ['a user that is not POSIX', { sshUser: 'root; id' }],
    ['a user starting with a digit', { sshUser: '0day' }],
    ['port 0', { sshPort: 0 }],
    ['port 65536', { sshPort: 65536 }],
  ])('rejects %s', (_what, over) => {
    expect(nodeEventSchema.safeParse(requested(over)).success).toBe(false);
  });

  it('accepts what the API accepts', () => {
    for (const over of [{}, { name: 'web-1.example.com', sshUser: 'deploy_user', sshPort: 2222 }, { name: '1a', sshUser: '_svc' }]) {
      expect(nodeEventSchema.safeParse(requested(over)).success).toBe(true);
    }
  });

  it('makes such a name undecodable from a stored message', () => {
    const envelope = {
      ...requested({ name: "{{ lookup('pipe','id') }}" }),
      eventId: 'e1',
      streamId: 'n_1',
      occurredAt: '2026-12-03T12:00:00.000Z',
      actor: 'system',
      correlationId: 'j_1',
      causationId: 'c1',
    };
    const data = new TextEncoder().encode(JSON.stringify({ events: [envelope] }));
    expect(() => decodeDecision('pressluft.node.n_1', 7, data)).toThrow(EventDecodeError);
    // The same message with a valid name decodes, so the name alone is what failed.
    const ok = new TextEncoder().encode(JSON.stringify({ events: [{ ...envelope, data: { ...envelope.data, name: 'web-1' } }] }));
    expect(decodeDecision('pressluft.node.n_1', 7, ok).events).toHaveLength(1);
  });
});
