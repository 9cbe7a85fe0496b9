import { execFileSync } from 'node:child_process';

/**
 * vitest globalSetup: brings dist/ up to date with src/ before any test file runs (scripts/setup.sh's
 * build step, a no-op when its stamp matches). Tests that spawn bin/pressluft.js (the CLI, serve)
 * then run what users run, never a stale build, also under a bare `npx vitest`.
 */
export default function buildDist(): void {
  execFileSync('bash', ['scripts/setup.sh', 'build'], { stdio: 'inherit' });
}
