#!/usr/bin/env node
// Runs the compiled CLI from dist/ (built by scripts/setup.sh, `npm run build`): plain
// JavaScript, no transpiler at start-up (ADR 0043).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('pressluft: dist/ is not built; run `npm run build` (or scripts/setup.sh) first\n');
  process.exit(1);
}
await import(main.href);
