import { describe, expect, it } from 'vitest';
import { forbiddenTarget } from '../../src/sagas/reachability.ts';

describe('the port guard: Ansible never goes to this machine’s own sshd', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0.0.0.0', '::', '::ffff:127.0.0.1', '::ffff:0.0.0.0'])('refuses %s:22', (host) =>
    expect(forbiddenTarget(host, 22)).toMatch(/this machine's own sshd/));

  it.each([
    ['127.0.0.1', 2222],
    ['::1', 2223],
    ['198.51.100.7', 22],
    ['2001:db8::1', 22],
  ] as const)('lets %s:%i through', (host, port) => expect(forbiddenTarget(host, port)).toBeNull());
});
