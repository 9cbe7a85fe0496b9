import { describe, expect, it } from 'vitest';
import { md5Fingerprint } from '../../src/ssh-keys/fingerprint.ts';
import { generateOpenSshEd25519 } from '../../src/ssh-keys/openssh-key.ts';
import { providerFor, rejectionOf, useSimulator } from './simulator-fixture.ts';

const sim = useSimulator();
const ours = generateOpenSshEd25519('pressluft').publicKey;
const KEY_NAME = 'pressluft-control-plane';

describe('ensureSshKey', () => {
  it('creates the key under the deterministic name with our label when absent', async () => {
    const ref = await providerFor(sim()).ensureSshKey(ours);
    const [key, ...rest] = sim().admin.snapshot().sshKeys;
    expect(rest).toHaveLength(0);
    expect(key).toMatchObject({ name: KEY_NAME, fingerprint: md5Fingerprint(ours), labels: { 'pressluft/managed-by': 'pressluft' } });
    expect(ref).toEqual({ keyId: String(key!.id), fingerprint: md5Fingerprint(ours) });
  });

  it('reuses a key found by fingerprint, whatever its name, without creating one', async () => {
    const existing = await providerFor(sim()).client.createSshKey({ name: 'added-by-hand', public_key: ours.replace('pressluft', 'someone@laptop') });
    const ref = await providerFor(sim()).ensureSshKey(ours);
    expect(ref.keyId).toBe(String(existing.id));
    expect(sim().admin.snapshot().counters.calls.create_ssh_key).toBe(1);
    expect(sim().admin.snapshot().sshKeys).toHaveLength(1);
  });

  it('is idempotent across repeated calls', async () => {
    const p = providerFor(sim());
    const first = await p.ensureSshKey(ours);
    expect(await p.ensureSshKey(ours)).toEqual(first);
    expect(sim().admin.snapshot().sshKeys).toHaveLength(1);
  });

  it('resolves a uniqueness_error race by looking up again', async () => {
    // A concurrent worker registers the same key between our lookup and our POST.
    sim().admin.injectFault({ operation: 'create_ssh_key', applyFirst: true, effect: { type: 'error', status: 409, code: 'uniqueness_error', details: { fields: [{ name: 'public_key' }] } } });
    const ref = await providerFor(sim()).ensureSshKey(ours);
    const keys = sim().admin.snapshot().sshKeys;
    expect(keys).toHaveLength(1);
    expect(ref.keyId).toBe(String(keys[0]!.id));
    expect(sim().admin.snapshot().counters.calls.list_ssh_keys).toBe(2);
  });

  it('fails with PROVIDER_SSH_KEY_CONFLICT when our name holds another fingerprint, and registers nothing else', async () => {
    const other = generateOpenSshEd25519('intruder').publicKey;
    await providerFor(sim()).client.createSshKey({ name: KEY_NAME, public_key: other });
    const e = await rejectionOf(providerFor(sim()).ensureSshKey(ours));
    expect(e).toMatchObject({
      code: 'PROVIDER_SSH_KEY_CONFLICT',
      retryable: false,
      details: { keyName: KEY_NAME, theirFingerprint: md5Fingerprint(other), ourFingerprint: md5Fingerprint(ours) },
    });
    expect(sim().admin.snapshot().sshKeys.map((k) => k.fingerprint)).toEqual([md5Fingerprint(other)]);
  });

  it('maps a refused key to PROVIDER_SSH_KEY_REGISTRATION_FAILED', async () => {
    sim().admin.injectFault({ operation: 'create_ssh_key', effect: { type: 'error', status: 422, code: 'invalid_input', message: 'unsupported key type' } });
    await expect(providerFor(sim()).ensureSshKey(ours)).rejects.toMatchObject({ code: 'PROVIDER_SSH_KEY_REGISTRATION_FAILED', retryable: false });
  });

  it('after an uncertain POST, the retry finds the key instead of creating a second', async () => {
    sim().admin.injectFault({ operation: 'create_ssh_key', applyFirst: true, effect: { type: 'drop' } });
    const p = providerFor(sim());
    await expect(p.ensureSshKey(ours)).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true });
    const ref = await p.ensureSshKey(ours);
    expect(sim().admin.snapshot().sshKeys.map((k) => String(k.id))).toEqual([ref.keyId]);
  });
});
