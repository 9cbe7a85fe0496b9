import { describe, expect, it } from 'vitest';
import { equalitySelector } from '../../src/providers/hetzner/label-selector.ts';
import { matchesSelector, parseLabelSelector } from '../../src/simulators/hetzner/label-selector.ts';
import { isOwnedBy, isValidLabelKey, labelValueFor, ownershipLabelKeys, ownershipLabels } from '../../src/providers/hetzner/labels.ts';

describe('label selectors', () => {
  it('builds an equality selector that matches exactly the given labels', () => {
    const sel = equalitySelector({ 'pressluft/managed-by': 'pressluft', 'pressluft/node-id': 'n1' });
    expect(sel).toBe('pressluft/managed-by==pressluft,pressluft/node-id==n1');
    expect(matchesSelector({ 'pressluft/managed-by': 'pressluft', 'pressluft/node-id': 'n1', x: 'y' }, parseLabelSelector(sel))).toBe(true);
    expect(matchesSelector({ 'pressluft/node-id': 'n1' }, parseLabelSelector(sel))).toBe(false);
  });
});

describe('labels', () => {
  it('follows Hetzner’s key rules, including the reserved prefix', () => {
    expect(isValidLabelKey('pressluft/node-id')).toBe(true);
    expect(isValidLabelKey('hetzner.cloud/x')).toBe(false);
    expect(isValidLabelKey('-bad')).toBe(false);
    expect(isValidLabelKey('a'.repeat(64))).toBe(false);
  });

  it('keeps readable ids and digests ids that label values cannot hold, deterministically', () => {
    expect(labelValueFor('01HZX-node_1')).toBe('01HZX-node_1');
    const long = 'n'.repeat(64);
    expect(labelValueFor(long)).toMatch(/^sha256-[0-9a-f]{56}$/);
    expect(labelValueFor(long)).toBe(labelValueFor(long));
    expect(labelValueFor('_x')).not.toBe(labelValueFor('_y'));
  });

  it('proves ownership by managed-by and node id, not by job id', () => {
    const keys = ownershipLabelKeys();
    const l = ownershipLabels(keys, 'n1', 'job-a');
    expect(isOwnedBy(l, keys, 'n1')).toBe(true);
    expect(isOwnedBy({ ...l, [keys.jobId]: 'job-b' }, keys, 'n1')).toBe(true);
    expect(isOwnedBy(l, keys, 'n2')).toBe(false);
    expect(isOwnedBy({ [keys.nodeId]: 'n1' }, keys, 'n1')).toBe(false);
  });
});
