import { describe, expect, it } from 'vitest';
import { LabelSelectorSyntaxError, matchesSelector, parseLabelSelector } from '../../src/simulators/hetzner/label-selector.ts';

const labels = { env: 'prod', 'pressluft/node-id': 'n1' };
const matches = (sel: string) => matchesSelector(labels, parseLabelSelector(sel));

describe('label selectors', () => {
  it('evaluates every form, joined with commas', () => {
    expect(matches('env==prod')).toBe(true);
    expect(matches('env!=prod')).toBe(false);
    expect(matches('missing!=x')).toBe(true);
    expect(matches('pressluft/node-id')).toBe(true);
    expect(matches('!env')).toBe(false);
    expect(matches('env in (dev, prod)')).toBe(true);
    expect(matches('env notin (dev,prod)')).toBe(false);
    expect(matches('env==prod,pressluft/node-id==n2')).toBe(false);
    expect(matches('')).toBe(true);
  });

  it('rejects malformed selectors', () => {
    for (const bad of ['env in (a', 'env==a==b', '=x', 'env in a']) {
      expect(() => parseLabelSelector(bad), bad).toThrow(LabelSelectorSyntaxError);
    }
  });
});
