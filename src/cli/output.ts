/** Where a command writes: JSON for scripts with --json, readable lines otherwise. */
export interface Output {
  json: boolean;
  /** Writes `value` as one JSON document with --json, else the human rendering. */
  result(value: unknown, human: () => string): void;
  line(text: string): void;
  error(text: string): void;
}

export interface Streams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export const createOutput = (streams: Streams, json: boolean): Output => ({
  json,
  result: (value, human) => streams.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`),
  line: (text) => streams.stdout.write(`${text}\n`),
  error: (text) => streams.stderr.write(`${text}\n`),
});

/** Left-aligned columns for a small table. */
export const table = (rows: string[][]): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
};
