#!/usr/bin/env bash
# Installs whatever `npm start` and `npm test` need on a fresh Debian 12 machine (as root).
# Idempotent: every step checks first, so a second run costs about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# JavaScript for `npm start` and the CLI (ADR 0043): tsc into dist/, only when src/ or the
# TypeScript setup changed since the last build (a stamp, like npm ci's below). `setup.sh build`
# runs only this step. A lock serialises concurrent builds; dist/ is swapped in whole.
build_dist() {
  local stamp=dist/.pressluft-src.sha256 want tmp
  want=$({ find src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum tsconfig.json tsconfig.build.json package-lock.json; } | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  exec 9>node_modules/.pressluft-build.lock
  flock 9
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exec 9>&-; return 0; fi
  echo "setup: building dist/ (tsc -p tsconfig.build.json)"
  tmp=dist.tmp.$$
  rm -rf "$tmp"
  node_modules/.bin/tsc -p tsconfig.build.json --outDir "$tmp" || { rm -rf "$tmp"; echo "setup: tsc failed; dist/ left as it was" >&2; return 1; }
  # Files that are not TypeScript (console assets) sit next to the modules that read them.
  (cd src && find . -type f ! -name '*.ts' -exec cp --parents {} "../$tmp/" \;)
  echo "$want" >"$tmp/.pressluft-src.sha256"
  rm -rf dist.old
  if [ -d dist ]; then mv dist dist.old; fi
  mv "$tmp" dist
  rm -rf dist.old
  exec 9>&-
}
if [ "${1:-}" = build ]; then
  build_dist
  exit 0
fi

# System packages: the binary each one provides, so we only call apt when something is missing.
declare -A wanted=(
  [ansible-playbook]=ansible
  [ansible-lint]=ansible-lint
  [debootstrap]=debootstrap
  [systemd-nspawn]=systemd-container
  [socat]=socat
  [apt-cacher-ng]=apt-cacher-ng
  [ip]=iproute2
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [curl]=curl
  [ps]=procps
  [chromium]=chromium
)
missing=()
for bin in "${!wanted[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing+=("${wanted[$bin]}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2046
  apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
fi

# nats-server >= 2.10 (clustered R3 streams need it; bookworm has 2.9.10): only that one package
# comes from Debian 13 (trixie). Everything else from trixie is pinned to -1, so it can never be installed.
nats_min=2.10.0
nats_ok() { command -v nats-server >/dev/null 2>&1 && dpkg --compare-versions "$(nats-server --version | sed 's/^nats-server: v//')" ge "$nats_min"; }
if ! nats_ok; then
  [ "$(id -u)" -eq 0 ] || { echo "setup: nats-server >= $nats_min is missing (run as root)" >&2; exit 1; }
  echo "setup: installing nats-server from trixie (pinned: no other package comes from it)"
  cat >/etc/apt/sources.list.d/pressluft-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >/etc/apt/preferences.d/pressluft-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: -1

Package: nats-server
Pin: release n=trixie
Pin-Priority: 990
PIN
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nats-server
  nats_ok || { echo "setup: nats-server is still older than $nats_min" >&2; exit 1; }
fi

# Node packages: npm ci only when the lockfile changed since the last install.
stamp=node_modules/.pressluft-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

build_dist
