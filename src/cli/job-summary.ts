import type { JobView } from '../projections/read-model-queries.ts';
import { table } from './output.ts';

const or = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/**
 * What a person reads about a job: where it stands, why it failed in one line, what it ran and the
 * host key it trusted. The Ansible output tail is left to `pressluft job log`, so the line that
 * matters is not lost under it.
 */
export const jobSummary = (job: JobView): string => {
  const rows: string[][] = [
    ['job:', job.id],
    ['node:', job.nodeId],
    ['status:', job.status],
    ['step:', job.step],
    ['attempt:', `${job.attempt} of ${job.maxAttempts}`],
    ['requested:', job.requestedAt],
    ['finished:', or(job.finishedAt)],
  ];
  if (job.runAfter) rows.push(['retry after:', job.runAfter]);
  if (job.errorCode) rows.push(['error:', job.errorCode]);
  // One line, even from an older control plane that stored the whole tail here.
  if (job.errorMessage) rows.push(['message:', job.errorMessage.split('\n').filter((l) => l.trim()).at(-1) ?? '']);
  if (job.playbookDigest || job.productVersion) rows.push(['playbook:', `bundle ${or(job.playbookDigest)}, version ${or(job.productVersion)}`]);
  if (job.hostKeyFingerprint) rows.push(['host key:', job.hostKeyFingerprint]);
  if (job.hostKeyMismatchExpected) {
    rows.push(['host key seen:', `${or(job.hostKeyMismatchPresented)} (expected ${job.hostKeyMismatchExpected})`]);
    if (job.hostKeyMismatchPresented) rows.push(['if rebuilt:', `pressluft node trust-host-key ${job.nodeId} --fingerprint ${job.hostKeyMismatchPresented}`]);
  }
  if (job.outputTail) rows.push(['output:', `pressluft job log ${job.id}`]);
  return table(rows);
};
