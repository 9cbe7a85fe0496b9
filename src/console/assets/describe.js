// One readable line per event, for the auditor's timeline. The raw event stays one click away.

import { oneLine } from './dom.js';

const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const recap = (r) => (r ? `ok ${r.ok}, changed ${r.changed}, failed ${r.failures}, unreachable ${r.unreachable}` : '');

const LINES = {
  ProvisionRequested: (d) =>
    `${d.reprovision ? 'Re-provision' : 'Provision'} requested: ${d.name} (${d.serverType} in ${d.location}, ${d.image}, ssh ${d.sshUser}@port ${d.sshPort}), up to ${d.maxAttempts} attempts`,
  JobStarted: (d) => `Attempt ${d.attempt} started`,
  SshKeyRegistered: (d) => `SSH key ${d.keyId} registered at the provider (${d.fingerprint})`,
  ServerCreateRequested: (d) => `Server ${d.serverName} requested from the provider`,
  ServerCreated: (d) => `Server ${d.serverId} ${d.adopted ? 'adopted (it already existed)' : 'created'}; waiting for ${d.actionIds.length} action(s)`,
  ActionPolled: (d) => `Provider action ${d.actionId}: ${d.status}, ${d.progress}%${d.errorCode ? ` [${d.errorCode}]` : ''}`,
  ServerReady: (d) => `Server ${d.serverId} is ${d.providerStatus} at ${d.ipv4 ?? 'no IPv4'}`,
  AnsibleStarted: (d) => `Ansible started: ${d.playbook}`,
  AnsibleSucceeded: (d) => `Ansible succeeded in ${secs(d.durationMs)}: ${recap(d.recap)}`,
  AnsibleFailed: (d) => `Ansible failed [${d.errorCode}] with exit code ${d.exitCode ?? 'none'} after ${secs(d.durationMs)}: ${recap(d.recap)}`,
  RetryScheduled: (d) => `Attempt ${d.attempt} failed [${d.errorCode}]: ${oneLine(d.errorMessage)}. Next attempt at ${new Date(d.runAfter).toLocaleString()}`,
  ProvisionFailed: (d) => `Provision failed at step ${d.step} [${d.errorCode}]: ${oneLine(d.errorMessage)}`,
  ProvisionSucceeded: (d) => `Provision succeeded on attempt ${d.attempt}`,
  JobCancelRequested: (d) => `Cancel requested: ${d.reason}`,
  JobCancelled: () => 'Job cancelled',
};

/** A history entry ({ type, data, … }) as one line; an unknown type is shown by its name. */
export const describeEvent = (e) => {
  const f = LINES[e.type];
  if (!f) return e.type;
  try {
    return f(e.data ?? {});
  } catch {
    return e.type;
  }
};
