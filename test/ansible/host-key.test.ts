import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownHostsLine, scanHostKey, sshRefusal, strictHostKeyArgs } from '../../src/ansible/host-key.ts';
import { sha256Fingerprint } from '../../src/ssh-keys/fingerprint.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';

const publicKey = generateOpenSshEd25519('k').publicKey.split(' ').slice(0, 2).join(' ');
const key = { publicKey, fingerprint: sha256Fingerprint(publicKey) };

// What OpenSSH 9.2 printed, as Ansible's unreachable result carries it (stdout: JSON-escaped).
const CHANGED =
  'Data could not be sent to remote host "127.0.0.1". Make sure this host can be reached over ssh: @@@\\r\\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\\r\\n' +
  'The fingerprint for the ED25519 key sent by the remote host is\\nSHA256:NeGY+WhGSvtOSsLjGJ1YzMS2nC6FcM7wlfGAqUSWnZs.\\r\\nHost key verification failed.\\r\\n';

describe('host keys at the runner', () => {
  it('fingerprints a key as ssh-keygen -l does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pressluft-hk-'));
    try {
      writeFileSync(join(dir, 'k.pub'), `${publicKey}\n`);
      expect(execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'k.pub')], { encoding: 'utf8' }).split(' ')[1]).toBe(key.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes known_hosts with exactly the recorded key, bracketing a non-default port', () => {
    expect(knownHostsLine('203.0.113.7', 2222, key)).toBe(`[203.0.113.7]:2222 ${publicKey}\n`);
    expect(knownHostsLine('203.0.113.7', 22, key)).toBe(`203.0.113.7 ${publicKey}\n`);
    expect(knownHostsLine('2001:db8::1', 2222, key)).toBe(`[2001:db8::1]:2222 ${publicKey}\n`);
  });

  it('checks strictly, ed25519 only, against that file alone', () => {
    expect(strictHostKeyArgs('/run/x/known_hosts')).toEqual([
      '-o StrictHostKeyChecking=yes',
      '-o UserKnownHostsFile=/run/x/known_hosts',
      '-o GlobalKnownHostsFile=/dev/null',
      '-o HostKeyAlgorithms=ssh-ed25519',
      '-o KnownHostsCommand=none',
      '-F /dev/null',
    ]);
  });

  it('reads a changed host key, with the presented fingerprint, from escaped and plain output', () => {
    expect(sshRefusal(CHANGED)).toEqual({ kind: 'host_key', presentedFingerprint: 'SHA256:NeGY+WhGSvtOSsLjGJ1YzMS2nC6FcM7wlfGAqUSWnZs' });
    expect(sshRefusal(CHANGED.replaceAll('\\r\\n', '\r\n').replaceAll('\\n', '\n'))).toMatchObject({ presentedFingerprint: 'SHA256:NeGY+WhGSvtOSsLjGJ1YzMS2nC6FcM7wlfGAqUSWnZs' });
    expect(sshRefusal('Unable to negotiate with 127.0.0.1 port 2222: no matching host key type found. Their offer: rsa-sha2-512')).toEqual({ kind: 'host_key', presentedFingerprint: null });
  });

  it('tells a refused login and an unreachable node apart from a changed key', () => {
    expect(sshRefusal('Failed to connect to the host via ssh: root@127.0.0.1: Permission denied (publickey).')).toEqual({ kind: 'auth' });
    expect(sshRefusal('Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 2222: Connection refused')).toBeNull();
    expect(sshRefusal('Failed to connect to the host via ssh: ssh: connect to host 10.0.0.1 port 22: Connection timed out')).toBeNull();
  });

  it('leaves ssh loud enough to say why it refused (ansible.cfg sets no quiet log level)', () => {
    const sshArgs = /^ssh_args\s*=(.*)$/m.exec(readFileSync('ansible/ansible.cfg', 'utf8'))?.[1] ?? '';
    expect(sshArgs).not.toMatch(/LogLevel=(QUIET|FATAL)|(^|\s)-q(\s|$)/i);
  });

  it('never scans this machine’s own sshd', async () => {
    expect(await scanHostKey('127.0.0.1', 22)).toBeNull();
    expect(await scanHostKey('::ffff:127.0.0.1', 22)).toBeNull();
  });
});
