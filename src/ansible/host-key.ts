import { execFile } from 'node:child_process';
import { hostKeySchema, type HostKey } from '../events/node-events.ts';
import { forbiddenTarget } from '../sagas/reachability.ts';
import { sha256Fingerprint } from '../ssh-keys/fingerprint.ts';
import type { HostKeyMismatch } from './runner-port.ts';

/** known_hosts names a non-default port as `[host]:port`; an IPv6 address alone stays bare on port 22. */
const knownHostsName = (host: string, port: number): string => (port === 22 ? host : `[${host}]:${port}`);

/** The run's whole known_hosts: exactly the recorded key for exactly this address. */
export const knownHostsLine = (host: string, port: number, key: HostKey): string => `${knownHostsName(host, port)} ${key.publicKey}\n`;

/**
 * Strict checking: ssh accepts only the recorded ed25519 key and never learns another one. The
 * global file is off, so nothing this machine's ~/.ssh or /etc/ssh holds can vouch for a node.
 */
export const strictHostKeyArgs = (knownHostsFile: string): string[] => [
  '-o StrictHostKeyChecking=yes',
  `-o UserKnownHostsFile=${knownHostsFile}`,
  '-o GlobalKnownHostsFile=/dev/null',
  '-o HostKeyAlgorithms=ssh-ed25519',
  // No ssh_config of this machine applies: a KnownHostsCommand or a Host block there could vouch for another key.
  '-o KnownHostsCommand=none',
  '-F /dev/null',
];

/** Why ssh refused before any task could run, read from its own words in Ansible's unreachable result. */
export type SshRefusal = { kind: 'host_key'; presentedFingerprint: string | null } | { kind: 'auth' };

// OpenSSH: error() for the banner and the presented fingerprint, fatal() for the verdict. A node
// with no ed25519 key at all cannot prove it holds the recorded one either: that is a mismatch too.
const HOST_KEY_FAILURE = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|no matching host key type found/;
const PRESENTED = /key sent by the remote host is[\s\\rn]*(SHA256:[A-Za-z0-9+/]{43})/;
const AUTH_FAILURE = /Permission denied \(publickey/;

export const sshRefusal = (text: string): SshRefusal | null => {
  if (HOST_KEY_FAILURE.test(text)) return { kind: 'host_key', presentedFingerprint: PRESENTED.exec(text)?.[1] ?? null };
  if (AUTH_FAILURE.test(text)) return { kind: 'auth' };
  return null;
};

/**
 * The key the node presents now, fetched after a mismatch so that an operator can re-trust it
 * (trust-host-key) once verified out of band. Same guard as the run: never this machine's sshd.
 * null when the node does not answer with an ed25519 key within the timeout.
 */
export const scanHostKey = (host: string, port: number, timeoutSec = 5): Promise<HostKey | null> => {
  if (forbiddenTarget(host, port)) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile('ssh-keyscan', ['-T', String(timeoutSec), '-t', 'ed25519', '-p', String(port), host], { timeout: (timeoutSec + 5) * 1000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (_err, stdout) => {
      // One line: "<name> ssh-ed25519 <base64>"; comments (#) are ssh-keyscan's banner.
      const line = String(stdout ?? '').split('\n').find((l) => l.trim() !== '' && !l.startsWith('#'));
      const [, type, b64] = line?.trim().split(/\s+/) ?? [];
      const parsed = hostKeySchema.shape.publicKey.safeParse(`${type} ${b64}`);
      if (!parsed.success) return resolve(null);
      try {
        resolve({ publicKey: parsed.data, fingerprint: sha256Fingerprint(parsed.data) });
      } catch {
        resolve(null);
      }
    });
  });
};

/**
 * What the refused run records: the scan's key only when it is the one ssh refused (when ssh named
 * it), so that a later trust can never pick up a key other than the one this run saw.
 */
export const presentedHostKey = async (host: string, port: number, expectedFingerprint: string, sshSaid: string | null): Promise<HostKeyMismatch> => {
  const scanned = await scanHostKey(host, port);
  const agrees = scanned !== null && (sshSaid === null || scanned.fingerprint === sshSaid) && scanned.fingerprint !== expectedFingerprint;
  return {
    expectedFingerprint,
    presentedFingerprint: sshSaid ?? (agrees ? scanned.fingerprint : null),
    presentedPublicKey: agrees ? scanned.publicKey : null,
  };
};
