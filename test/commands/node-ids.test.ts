import { describe, expect, it } from 'vitest';
import { provisionIds, randomJobId, randomNodeId } from '../../src/commands/node-ids.ts';
import { TOKEN_SAFE_ID } from '../../src/events/ids.ts';

describe('node and job ids', () => {
  it('derives the same ids and message id from the same Idempotency-Key', () => {
    const a = provisionIds('web-1');
    expect(provisionIds('web-1')).toEqual(a);
    expect(a).toMatchObject({ nodeId: expect.stringMatching(/^n_[0-9a-f]{20}$/), jobId: expect.stringMatching(/^j_[0-9a-f]{20}$/) });
    expect(a.messageId).toBe(`provision:${a.jobId}`);
  });

  it('gives another key other ids, and no key fresh ids each time', () => {
    expect(provisionIds('web-2').nodeId).not.toBe(provisionIds('web-1').nodeId);
    expect(provisionIds(undefined).nodeId).not.toBe(provisionIds(undefined).nodeId);
    expect(randomJobId()).not.toBe(randomJobId());
  });

  it('makes ids that are safe as NATS subject tokens', () => {
    for (const id of [randomNodeId(), randomJobId(), provisionIds('a.b *>').nodeId, provisionIds('a.b *>').jobId]) {
      expect(id).toMatch(TOKEN_SAFE_ID);
    }
  });
});
