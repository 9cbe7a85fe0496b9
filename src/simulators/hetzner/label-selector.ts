/**
 * Hetzner label selectors, as the simulator evaluates them (docs/providers.md, "Hetzner API facts", "Labels"):
 * `k==v` (or `k=v`), `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined with commas.
 * The adapter only ever builds `k==v` terms (providers/hetzner/label-selector.ts).
 */
export type SelectorTerm =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'exists' | 'absent'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

export class LabelSelectorSyntaxError extends Error {}

/** Splits on commas outside parentheses, so `k in (a,b),x` yields two terms. */
const splitTerms = (selector: string): string[] => {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new LabelSelectorSyntaxError(`unbalanced ')' in label selector`);
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new LabelSelectorSyntaxError(`unbalanced '(' in label selector`);
  terms.push(current);
  return terms.map((t) => t.trim());
};

const KEY = String.raw`[A-Za-z0-9][A-Za-z0-9._/-]*`;
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s+\\(([^()]*)\\)$`);
const CMP = new RegExp(`^(${KEY})\\s*(==|!=|=)\\s*([^=!,\\s()]*)$`);
const EXISTS = new RegExp(`^(!?)(${KEY})$`);

/** A blank selector selects everything, as an absent one does. */
export const parseLabelSelector = (selector: string): SelectorTerm[] =>
  selector.trim() === '' ? [] : splitTerms(selector).map((term): SelectorTerm => {
    const set = SET.exec(term);
    if (set) {
      const values = set[3]!.split(',').map((v) => v.trim());
      return { op: set[2] === 'in' ? 'in' : 'notin', key: set[1]!, values };
    }
    const cmp = CMP.exec(term);
    if (cmp) return { op: cmp[2] === '!=' ? 'neq' : 'eq', key: cmp[1]!, value: cmp[3]! };
    const exists = EXISTS.exec(term);
    if (exists) return { op: exists[1] === '!' ? 'absent' : 'exists', key: exists[2]! };
    throw new LabelSelectorSyntaxError(`invalid label selector term '${term}'`);
  });

const matchesTerm = (labels: Readonly<Record<string, string>>, t: SelectorTerm): boolean => {
  const has = Object.hasOwn(labels, t.key);
  const value = labels[t.key];
  switch (t.op) {
    case 'eq':
      return has && value === t.value;
    case 'neq':
      return !has || value !== t.value;
    case 'exists':
      return has;
    case 'absent':
      return !has;
    case 'in':
      return has && t.values.includes(value!);
    case 'notin':
      return !has || !t.values.includes(value!);
  }
};

export const matchesSelector = (labels: Readonly<Record<string, string>>, terms: readonly SelectorTerm[]): boolean =>
  terms.every((t) => matchesTerm(labels, t));
