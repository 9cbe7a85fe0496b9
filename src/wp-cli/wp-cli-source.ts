import { join } from 'node:path';
import { isLoopbackHost, type Config } from '../config/config.ts';
import { WP_CLI_RELEASE } from './wp-cli-release.ts';
import type { WpCliSource } from './wp-cli-phar.ts';

/**
 * Which WP-CLI phar a control plane installs:
 * - PRESSLUFT_WP_CLI_PHAR + PRESSLUFT_WP_CLI_SHA256: the operator's local file (explicit override;
 *   the tests and the demo use it for the stand-in of ADR 0021);
 * - a real provider (HCLOUD_TOKEN with an endpoint beyond loopback), or an explicit
 *   PRESSLUFT_WP_CLI_URL: the pinned release, downloaded once into `<data dir>/wp-cli` and
 *   checked against its published sha512;
 * - otherwise (the built-in simulator, or a simulator on loopback) none: nothing leaves loopback
 *   unless a real provider is configured (ADR 0002), and the wp_cli role refuses to run without a phar.
 */
export const wpCliSourceFrom = (config: Config): WpCliSource | null => {
  const { wpCliPhar, wpCliSha256, wpCliUrl } = config.ansible;
  if (wpCliPhar && wpCliSha256) return { kind: 'local', path: wpCliPhar, sha256: wpCliSha256 };
  if (!wpCliUrl && !realProvider(config)) return null;
  return { kind: 'release', release: { ...WP_CLI_RELEASE, url: wpCliUrl ?? WP_CLI_RELEASE.url }, cacheDir: join(config.dataDir, 'wp-cli') };
};

const realProvider = (config: Config): boolean =>
  !!config.hetzner.token && !!config.hetzner.endpoint && !isLoopbackHost(new URL(config.hetzner.endpoint).hostname);

/** The Ansible extra-vars of a verified phar (ansible/roles/wp_cli). */
export const wpCliAnsibleVars = (phar: { path: string; sha256: string }): Record<string, string> => ({ wp_cli_phar_src: phar.path, wp_cli_sha256: phar.sha256 });
