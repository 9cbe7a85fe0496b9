import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/ansible/ansible-errors.ts';
import { countListedTasks } from '../../src/ansible/list-tasks.ts';
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

describe('countListedTasks', () => {
  it('counts task lines across plays and roles, not plays or headers', () => {
    const listing = [
      'playbook: p.yml',
      '',
      '  play #1 (all): First\tTAGS: []',
      '    tasks:',
      '      common : Install packages\tTAGS: []',
      '      Plain task\tTAGS: [x]',
      '',
      '  play #2 (all): Second\tTAGS: []',
      '    tasks:',
      '      node_verify : Check nginx\tTAGS: []',
    ].join('\n');
    expect(countListedTasks(listing)).toBe(3);
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
    expect(parseProgressLine('{"event":"task","task":"t","host":"h","status":"weird","handler":false}')).toBeNull();
    expect(parseProgressLine('not json')).toBeNull();
  });
});
