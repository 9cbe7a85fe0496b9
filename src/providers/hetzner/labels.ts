import { createHash } from 'node:crypto';

/**
 * Label and name rules from docs/providers.md ("Hetzner API facts": "Labels", "Endpoints"), shared by the adapter
 * (to build valid labels) and the simulator (to reject invalid ones as Hetzner does).
 */
const LABEL_NAME = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const RESERVED_PREFIX = 'hetzner.cloud';
/** RFC 1123 hostname: dot-separated labels of 1–63 alphanumerics and inner hyphens. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const isValidLabelKey = (key: string): boolean => {
  const slash = key.lastIndexOf('/');
  if (slash === -1) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix !== RESERVED_PREFIX && !prefix.endsWith(`.${RESERVED_PREFIX}`) && LABEL_PREFIX.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
};

export const isValidLabelValue = (value: string): boolean => value === '' || LABEL_NAME.test(value);

export const isValidHostname = (name: string): boolean => HOSTNAME.test(name);

/** The first label key or value that Hetzner would reject, or null. */
export const invalidLabel = (labels: Readonly<Record<string, string>>): string | null => {
  for (const [k, v] of Object.entries(labels)) {
    if (!isValidLabelKey(k)) return `label key '${k}'`;
    if (!isValidLabelValue(v)) return `label value '${v}' of '${k}'`;
  }
  return null;
};

/**
 * Our ids may be 64 chars or start with '_' (src/events/ids.ts); label values may not.
 * Such ids get a deterministic digest so that the label still proves ownership.
 */
export const labelValueFor = (id: string): string =>
  isValidLabelValue(id) && id !== '' ? id : `sha256-${createHash('sha256').update(id).digest('hex').slice(0, 56)}`;

export const DEFAULT_LABELS_PREFIX = 'pressluft';
export const MANAGED_BY_VALUE = 'pressluft';

export interface OwnershipLabelKeys {
  managedBy: string;
  nodeId: string;
  jobId: string;
}

export const ownershipLabelKeys = (prefix = DEFAULT_LABELS_PREFIX): OwnershipLabelKeys => ({
  managedBy: `${prefix}/managed-by`,
  nodeId: `${prefix}/node-id`,
  jobId: `${prefix}/job-id`,
});

/** Identifies every resource we own. The job id is forensic only; ownership is managed-by + node-id. */
export const ownershipLabels = (keys: OwnershipLabelKeys, nodeId: string, jobId: string): Record<string, string> => ({
  [keys.managedBy]: MANAGED_BY_VALUE,
  [keys.nodeId]: labelValueFor(nodeId),
  [keys.jobId]: labelValueFor(jobId),
});

/** Labels that find the node's servers, whichever job created them. */
export const nodeSelectorLabels = (keys: OwnershipLabelKeys, nodeId: string): Record<string, string> => ({
  [keys.managedBy]: MANAGED_BY_VALUE,
  [keys.nodeId]: labelValueFor(nodeId),
});

/** A server is ours only if its labels say so; a matching name alone proves nothing. */
export const isOwnedBy = (labels: Readonly<Record<string, string>>, keys: OwnershipLabelKeys, nodeId: string): boolean =>
  labels[keys.managedBy] === MANAGED_BY_VALUE && labels[keys.nodeId] === labelValueFor(nodeId);
