#!/usr/bin/env bash
# Installs whatever `npm start` and `npm test` need on a fresh Debian 12 machine (as root).
# Idempotent: every step checks first, so a second run costs about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: the binary each one provides, so we only call apt when something is missing.
declare -A wanted=(
  [nats-server]=nats-server
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

# Node packages: npm ci only when the lockfile changed since the last install.
stamp=node_modules/.pressluft-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
