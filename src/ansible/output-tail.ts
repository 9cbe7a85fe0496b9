import { redact } from '../logging/logger.ts';

export const TAIL_BYTES = 10 * 1024;

/**
 * Every form in which a secret may show up in Ansible output: verbatim, JSON-escaped (module
 * results), and line by line for multi-line secrets such as private keys, since output is
 * redacted one line at a time. Longest first so a fragment never pre-empts the whole secret.
 */
export const secretVariants = (secrets: readonly string[]): string[] => {
  const variants = secrets.flatMap((s) => {
    const lines = s.includes('\n') ? s.split('\n').map((l) => l.trim()).filter((l) => l.length >= 8) : [];
    return [s, JSON.stringify(s).slice(1, -1), ...lines];
  });
  return [...new Set(variants.filter((v) => v.length > 0))].sort((a, b) => b.length - a.length);
};

/** Keeps the last TAIL_BYTES of combined output, redacted line by line before it is stored. */
export class OutputTail {
  private lines: string[] = [];
  private bytes = 0;

  constructor(private readonly secrets: readonly string[]) {}

  /** Redacts one line, keeps it and returns the redacted form for logging. */
  push(line: string): string {
    const clean = redact(line, this.secrets);
    this.lines.push(clean);
    this.bytes += Buffer.byteLength(clean) + 1;
    while (this.bytes > TAIL_BYTES && this.lines.length > 1) {
      this.bytes -= Buffer.byteLength(this.lines.shift() ?? '') + 1;
    }
    return clean;
  }

  text(): string {
    const all = Buffer.from(this.lines.join('\n'));
    return all.length <= TAIL_BYTES ? all.toString() : all.subarray(all.length - TAIL_BYTES).toString();
  }
}
