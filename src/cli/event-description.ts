import type { HistoryEntry, TaskProgressMessage } from '../api/api-schemas.ts';

type Data = Record<string, unknown>;
const s = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
/** Enough of a bundle digest to tell two apart at a glance; `pressluft version` prints it whole. */
export const shortDigest = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 12) : '-');

/** What an Ansible run executed and the host key it trusted; events written before issue 12 have none of it. */
const ranWhat = (d: Data): string => {
  const parts = [
    d.playbookDigest ? `bundle ${shortDigest(d.playbookDigest)}` : '',
    d.productVersion ? `version ${s(d.productVersion)}` : '',
    d.hostKeyFingerprint ? `trusting host key ${s(d.hostKeyFingerprint)}` : d.hostKeyFingerprint === null ? 'local connection' : '',
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
};

const mismatch = (d: Data): string => {
  const m = d.hostKeyMismatch as { expectedFingerprint?: string; presentedFingerprint?: string | null } | undefined;
  return m ? `: host key ${s(m.presentedFingerprint)} presented, ${s(m.expectedFingerprint)} expected` : '';
};

/** One readable line per event type, for the timeline and for `--wait` progress. */
const DESCRIBE: Record<string, (d: Data, actor?: string) => string> = {
  ProvisionRequested: (d) =>
    `${d.reprovision ? 're-provision' : 'provision'} requested: ${s(d.name)} (${s(d.serverType)}, ${s(d.location)}, ${s(d.image)}, ssh ${s(d.sshUser)}@:${s(d.sshPort)}), up to ${s(d.maxAttempts)} attempts`,
  JobStarted: (d) => `attempt ${s(d.attempt)} started`,
  SshKeyRegistered: (d) => `SSH key registered at the provider (${s(d.fingerprint)})`,
  ServerCreateRequested: (d) => `server create requested: ${s(d.serverName)}${d.hostKey ? ` with host key ${s((d.hostKey as Data).fingerprint)}` : ''}`,
  ServerCreated: (d) => `server ${s(d.serverId)} ${d.adopted ? 'adopted (it already existed)' : 'created'}`,
  ActionPolled: (d) => `provider action ${s(d.actionId)}: ${s(d.status)} ${s(d.progress)}%${d.errorCode ? ` (${s(d.errorCode)})` : ''}`,
  ServerReady: (d) => `server ${s(d.serverId)} ready at ${s(d.ipv4)}`,
  AnsibleStarted: (d) => `Ansible started: ${s(d.playbook)}${ranWhat(d)}`,
  AnsibleSucceeded: (d) => `Ansible succeeded in ${(Number(d.durationMs) / 1000).toFixed(1)} s`,
  AnsibleFailed: (d) => `Ansible failed: ${s(d.errorCode)} (exit ${s(d.exitCode)})${mismatch(d)}`,
  RetryScheduled: (d) => `attempt ${s(d.attempt)} failed with ${s(d.errorCode)}; retry after ${s(d.runAfter)}`,
  ProvisionFailed: (d) => `FAILED at ${s(d.step)}: ${s(d.errorCode)}`,
  ProvisionSucceeded: () => 'SUCCEEDED',
  JobCancelRequested: (d) => `cancel requested: ${s(d.reason)}`,
  JobCancelled: () => 'CANCELLED',
  HostKeyTrusted: (d, actor) => `host key ${s(d.fingerprint)} trusted${actor ? ` by ${actor}` : ''} (was ${s(d.previousFingerprint)}); the next run expects it`,
};

export const describeEvent = (e: Pick<HistoryEntry, 'type' | 'data'> & { actor?: string }): string => DESCRIBE[e.type]?.(e.data, e.actor) ?? e.type;

export const describeProgress = (p: TaskProgressMessage): string =>
  `Ansible task ${p.index} of ${p.total}: ${p.task} [${p.status}]${p.handler ? ' (handler)' : ''} (attempt ${p.attempt})`;

/** The auditor's timeline: one line per event, with position, time, actor and job. */
export const timeline = (events: readonly HistoryEntry[]): string =>
  events
    .map((e) => `#${String(e.position).padEnd(6)} ${e.occurredAt}  ${e.actor.padEnd(11)} ${e.correlationId}  ${e.type.padEnd(21)} ${describeEvent(e)}`)
    .join('\n');
