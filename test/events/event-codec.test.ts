import { describe, expect, it } from 'vitest';
import { decodeDecision, encodeDecision, EventDecodeError } from '../../src/events/event-codec.ts';
import { foldNode } from '../../src/events/node-state.ts';
import type { NodeEvent } from '../../src/events/node-events.ts';

/** The optional fields of issues 10 and 12: old events still decode, new ones decode whole, bad ones stop the reader. */
const meta = (i: number) => ({ eventId: `m-${i}`, streamId: 'n1', occurredAt: '2026-11-26T12:00:00.000Z', actor: 'saga', correlationId: 'j1', causationId: 'c' });
const ref = { jobId: 'j1', attempt: 1 };
const recap = { ok: 0, changed: 0, failures: 0, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 };
const KEY = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMqpIFcZgho9kBPBcRERloIi0wn6UtiM8C8b7PvFL14p', fingerprint: 'SHA256:Qzsk1Tg0bDCH4An8x/VVN8tA7jshiMPG31ZkW3VzZGk' };
const policy = { maxAttempts: 1, backoffMs: [0], jobTimeoutMs: 1000, ansibleTimeoutMs: 1000, actionTimeoutMs: 1000 };
const spec = { name: 'web-1', provider: 'hetzner', serverType: 'cx22', location: 'fsn1', image: 'ubuntu-24.04', sshUser: 'root', sshPort: 22 };

/** Raw JSON as an older control plane wrote it: no host key, no digest, no errorMessage on AnsibleFailed. */
const v1Decision = [
  { type: 'ProvisionRequested', version: 1, data: { nodeId: 'n1', jobId: 'j1', ...spec, maxAttempts: 1, policy, reprovision: false } },
  { type: 'JobStarted', version: 1, data: ref },
  { type: 'ServerCreateRequested', version: 1, data: { ...ref, serverName: 'pl-n1', labels: {} } },
  { type: 'AnsibleStarted', version: 1, data: { ...ref, playbook: 'ansible/playbooks/node-provision.yml' } },
  { type: 'AnsibleFailed', version: 1, data: { ...ref, errorCode: 'ANSIBLE_HOST_FAILED', retryable: false, exitCode: 2, recap, durationMs: 1, outputTail: 'tail' } },
];
const raw = (events: Array<Record<string, unknown>>) => new TextEncoder().encode(JSON.stringify({ events: events.map((e, i) => ({ ...meta(i), ...e })) }));

describe('event codec: host keys and what ran', () => {
  it('decodes v1 events written before the new fields, and folds them with null keys and digests', () => {
    const d = decodeDecision('pressluft.node.n1', 1, raw(v1Decision));
    expect(d.events.map((e) => e.type)).toEqual(v1Decision.map((e) => e.type));
    const s = foldNode(d.events.map((e) => ({ event: e as NodeEvent, at: e.occurredAt })));
    expect(s.hostKey).toBeNull();
    expect(s.presentedHostKey).toBeNull();
    expect(s.jobs.j1).toMatchObject({ playbookDigest: null, productVersion: null, hostKeyFingerprint: null, hostKeyMismatch: null });
    expect(s.jobs.j1?.expectPlaybook).toBeUndefined();
  });

  it('round-trips every new field and the HostKeyTrusted event', () => {
    const events = [
      { type: 'ProvisionRequested', version: 1, data: { nodeId: 'n1', jobId: 'j1', ...spec, maxAttempts: 1, policy, reprovision: true, expectPlaybook: 'a'.repeat(64) } },
      { type: 'ServerCreateRequested', version: 1, data: { ...ref, serverName: 'pl-n1', labels: {}, hostKey: KEY } },
      { type: 'AnsibleStarted', version: 1, data: { ...ref, playbook: 'p.yml', playbookDigest: 'a'.repeat(64), productVersion: '0.1.0', hostKeyFingerprint: KEY.fingerprint } },
      {
        type: 'AnsibleFailed',
        version: 1,
        data: { ...ref, errorCode: 'ANSIBLE_HOST_KEY_MISMATCH', retryable: false, exitCode: 4, recap, durationMs: 1, outputTail: '', errorMessage: 'one line', hostKeyMismatch: { expectedFingerprint: KEY.fingerprint, presentedFingerprint: null, presentedPublicKey: null } },
      },
      { type: 'HostKeyTrusted', version: 1, data: { nodeId: 'n1', jobId: 'j1', ...KEY, previousFingerprint: null } },
    ];
    const d = decodeDecision('s', 2, raw(events));
    const again = decodeDecision('s', 2, encodeDecision(d.events));
    expect(again.events.map((e) => e.data)).toEqual(events.map((e) => e.data));
  });

  it.each([
    ['a host key whose fingerprint is not its own', { type: 'ServerCreateRequested', version: 1, data: { ...ref, serverName: 'x', labels: {}, hostKey: { ...KEY, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } } }],
    ['a host key with a second known_hosts line in it', { type: 'ServerCreateRequested', version: 1, data: { ...ref, serverName: 'x', labels: {}, hostKey: { ...KEY, publicKey: `${KEY.publicKey}\n[evil]:22 ssh-ed25519 AAAA` } } }],
    ['a trusted key whose fingerprint is not its own', { type: 'HostKeyTrusted', version: 1, data: { nodeId: 'n1', jobId: 'j1', publicKey: KEY.publicKey, fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', previousFingerprint: null } }],
    ['an RSA host key', { type: 'HostKeyTrusted', version: 1, data: { nodeId: 'n1', jobId: 'j1', publicKey: 'ssh-rsa AAAAB3Nza', fingerprint: KEY.fingerprint, previousFingerprint: null } }],
    ['a digest that is not 64 hex', { type: 'AnsibleStarted', version: 1, data: { ...ref, playbook: 'p', playbookDigest: 'ABC' } }],
    ['an errorMessage over 300 characters', { type: 'AnsibleFailed', version: 1, data: { ...ref, errorCode: 'X', retryable: false, exitCode: 1, recap, durationMs: 1, outputTail: '', errorMessage: 'x'.repeat(301) } }],
  ])('refuses %s (EVENT_INVALID)', (_what, e) => {
    expect(() => decodeDecision('s', 3, raw([e]))).toThrow(EventDecodeError);
  });
});
