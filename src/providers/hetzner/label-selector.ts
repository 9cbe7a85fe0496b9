/**
 * Hetzner label selectors are `k==v` terms joined with commas (docs/providers.md, "Hetzner API facts", "Labels").
 * The adapter needs only exact matches; the simulator parses the full syntax (simulators/hetzner/label-selector.ts).
 */
export const equalitySelector = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels).map(([k, v]) => `${k}==${v}`).join(',');
