/**
 * The WP-CLI release the control plane installs on every node. Raise it deliberately: version,
 * URL and digest change together, and the digest is the one WP-CLI publishes beside the phar
 * (`wp-cli-<version>.phar.sha512` on the GitHub release), never one computed from a download.
 *
 * Provenance of the digest: GitHub is unreachable from the machine this was written on, so the
 * phar was NOT downloaded and hashed here. The value below is the published 2.12.0 sha512 as it is
 * pinned, identically, by the official Docker `wordpress:cli` image (WORDPRESS_CLI_SHA512) and by
 * several independent public build scripts. The first download on a connected machine checks it;
 * a wrong pin can only refuse the phar (WP_CLI_UNAVAILABLE), never install a different one.
 */
export const WP_CLI_RELEASE = {
  version: '2.12.0',
  url: 'https://github.com/wp-cli/wp-cli/releases/download/v2.12.0/wp-cli-2.12.0.phar',
  sha512: 'be928f6b8ca1e8dfb9d2f4b75a13aa4aee0896f8a9a0a1c45cd5d2c98605e6172e6d014dda2e27f88c98befc16c040cbb2bd1bfa121510ea5cdf5f6a30fe8832',
} as const;
