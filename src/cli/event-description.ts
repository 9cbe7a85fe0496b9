import type { HistoryEntry, TaskProgressMessage } from '../api/api-schemas.ts';

type Data = Record<string, unknown>;
const s = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));

/** One readable line per event type, for the timeline and for `--wait` progress. */
const DESCRIBE: Record<string, (d: Data) => string> = {
  ProvisionRequested: (d) =>
    `${d.reprovision ? 're-provision' : 'provision'} requested: ${s(d.name)} (${s(d.serverType)}, ${s(d.location)}, ${s(d.image)}, ssh ${s(d.sshUser)}@:${s(d.sshPort)}), up to ${s(d.maxAttempts)} attempts`,
  JobStarted: (d) => `attempt ${s(d.attempt)} started`,
  SshKeyRegistered: (d) => `SSH key registered at the provider (${s(d.fingerprint)})`,
  ServerCreateRequested: (d) => `server create requested: ${s(d.serverName)}`,
  ServerCreated: (d) => `server ${s(d.serverId)} ${d.adopted ? 'adopted (it already existed)' : 'created'}`,
  ActionPolled: (d) => `provider action ${s(d.actionId)}: ${s(d.status)} ${s(d.progress)}%${d.errorCode ? ` (${s(d.errorCode)})` : ''}`,
  ServerReady: (d) => `server ${s(d.serverId)} ready at ${s(d.ipv4)}`,
  AnsibleStarted: (d) => `Ansible started: ${s(d.playbook)}`,
  AnsibleSucceeded: (d) => `Ansible succeeded in ${(Number(d.durationMs) / 1000).toFixed(1)} s`,
  AnsibleFailed: (d) => `Ansible failed: ${s(d.errorCode)} (exit ${s(d.exitCode)})`,
  RetryScheduled: (d) => `attempt ${s(d.attempt)} failed with ${s(d.errorCode)}; retry after ${s(d.runAfter)}`,
  ProvisionFailed: (d) => `FAILED at ${s(d.step)}: ${s(d.errorCode)}`,
  ProvisionSucceeded: () => 'SUCCEEDED',
  JobCancelRequested: (d) => `cancel requested: ${s(d.reason)}`,
  JobCancelled: () => 'CANCELLED',
};

export const describeEvent = (e: Pick<HistoryEntry, 'type' | 'data'>): string => DESCRIBE[e.type]?.(e.data) ?? e.type;

export const describeProgress = (p: TaskProgressMessage): string =>
  `Ansible task ${p.index} of ${p.total}: ${p.task} [${p.status}]${p.handler ? ' (handler)' : ''} (attempt ${p.attempt})`;

/** The auditor's timeline: one line per event, with position, time, actor and job. */
export const timeline = (events: readonly HistoryEntry[]): string =>
  events
    .map((e) => `#${String(e.position).padEnd(6)} ${e.occurredAt}  ${e.actor.padEnd(11)} ${e.correlationId}  ${e.type.padEnd(21)} ${describeEvent(e)}`)
    .join('\n');
