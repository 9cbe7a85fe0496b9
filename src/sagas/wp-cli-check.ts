import { WpCliUnavailable } from '../wp-cli/wp-cli-phar.ts';
import { wpCliAnsibleVars } from '../wp-cli/wp-cli-source.ts';
import type { SagaDeps } from './step-context.ts';

/**
 * The verified WP-CLI phar as Ansible extra-vars, or why it cannot be had. The port downloads and
 * checks once per process, so asking again (before the provider, and again before Ansible) is cheap.
 */
export const checkWpCli = async (deps: SagaDeps): Promise<{ vars: Record<string, string> } | { refused: WpCliUnavailable }> => {
  if (!deps.ensureWpCliPhar) return { vars: {} };
  try {
    return { vars: wpCliAnsibleVars(await deps.ensureWpCliPhar()) };
  } catch (e) {
    return { refused: e instanceof WpCliUnavailable ? e : new WpCliUnavailable(e instanceof Error ? e.message : String(e), {}) };
  }
};
