/**
 * The control plane's own secrets, by the variable that may hold them. They are never passed to
 * ansible-playbook, and their values are redacted from its output whatever the caller passes.
 */
export const SECRET_ENV_NAMES = ['HCLOUD_TOKEN', 'PRESSLUFT_SECRET_KEY', 'PRESSLUFT_API_TOKEN'] as const;

/** What ansible-playbook may inherit: enough to find binaries, a home, a locale and a temp dir. */
const INHERITED = ['PATH', 'HOME', 'LANG', 'LANGUAGE', 'TMPDIR'];
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The values of SECRET_ENV_NAMES that are set in `env`. */
export const secretsFromEnv = (env: NodeJS.ProcessEnv = process.env): string[] =>
  SECRET_ENV_NAMES.map((name) => env[name]).filter((v): v is string => typeof v === 'string' && v.length > 0);

export interface AnsibleEnvOptions {
  /** ansible/ansible.cfg: ours and nothing else (no inherited ANSIBLE_* overrides it). */
  config: string;
  localTemp: string;
  /** Inside the run dir, so the ControlPersist master is findable (and killable) by this path. */
  controlPathDir: string;
  /** The run's own ssh-agent, when it has a key. */
  authSock?: string;
  /** Set for the real run: the fd the progress callback writes to. */
  progressFd?: number;
}

/**
 * An allowlist, not a blocklist: every variable not named here stays with the control plane,
 * so no token, key or unrelated setting of ours (or of whoever started us) reaches Ansible,
 * its modules or a lookup('env') in a role.
 */
export const ansibleEnv = (o: AnsibleEnvOptions, parent: NodeJS.ProcessEnv = process.env): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && (INHERITED.includes(name) || name.startsWith('LC_'))) env[name] = value;
  }
  return {
    ...env,
    PATH: env.PATH ?? DEFAULT_PATH,
    ANSIBLE_CONFIG: o.config,
    ANSIBLE_LOCAL_TEMP: o.localTemp,
    ANSIBLE_SSH_CONTROL_PATH_DIR: o.controlPathDir,
    ANSIBLE_NOCOLOR: '1',
    PYTHONUNBUFFERED: '1',
    // The callback plugin lives in the checkout: no __pycache__ written into it.
    PYTHONDONTWRITEBYTECODE: '1',
    ...(o.authSock ? { SSH_AUTH_SOCK: o.authSock } : {}),
    ...(o.progressFd !== undefined ? { PRESSLUFT_PROGRESS_FD: String(o.progressFd) } : {}),
  };
};
