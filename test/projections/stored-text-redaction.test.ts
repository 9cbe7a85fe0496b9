import { describe, expect, it } from 'vitest';
import { redactStoredText } from '../../src/projections/stored-text-redaction.ts';

describe('redactStoredText', () => {
  it('replaces private keys, credentials, secret-named values and opaque strings', () => {
    const token = 'aB3'.repeat(21) + 'z';
    const cases: Array<[string, string]> = [
      ['-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- after', '[redacted private key] after'],
      ['cut -----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl', 'cut [redacted private key]'],
      ['Authorization: Bearer abc.def', 'Authorization: [redacted] [redacted]'],
      ['curl -H "x: Basic dXNlcjpwYXNz"', 'curl -H "x: Basic [redacted]"'],
      ['{"apiToken":"s3cr\\"et","name":"web-1"}', '{"apiToken":"[redacted]","name":"web-1"}'],
      ['HCLOUD_TOKEN=abc123 next', 'HCLOUD_TOKEN=[redacted] next'],
      ['password: hunter2', 'password: [redacted]'],
      [`key ${token} end`, 'key [redacted] end'],
    ];
    for (const [input, expected] of cases) expect(redactStoredText(input), input).toBe(expected);
  });

  it('leaves ordinary text, ids and positions alone', () => {
    const text = 'invalid event in pressluft.node.n_0123456789abcdef0123 at position 812: events.0.type: Invalid input (eventId 8c1f2a3b-1d2e-4f5a-9b8c-7d6e5f4a3b2c)';
    expect(redactStoredText(text)).toBe(text);
  });
});
