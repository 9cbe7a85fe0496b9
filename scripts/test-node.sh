#!/usr/bin/env bash
# A disposable Debian 12 systemd node for the converge test (docs/ansible.md, "The test node").
#
#   scripts/test-node.sh up [PUBKEY_FILE]   boot it (or reuse it) and print PRESSLUFT_TEST_NODE=127.0.0.1:<port>
#   scripts/test-node.sh down               stop it; no process, namespace or mount is left behind
#   scripts/test-node.sh status             say whether it runs, and where
#
# Network safety: the node lives in its own network namespace and never sees a real interface.
# Its sshd is reached at 127.0.0.1:$PORT on the host through socat over a Unix socket; its apt
# reaches deb.debian.org only through an apt-cacher-ng we start on host loopback, which is
# restricted to Debian's mirror. ufw and fail2ban inside the node can only touch the node's netns.
set -euo pipefail

NAME=${PRESSLUFT_TEST_NODE_NAME:-pressluft-test-node}
PORT=${PRESSLUFT_TEST_NODE_PORT:-2222}
PROXY_PORT=${PRESSLUFT_TEST_NODE_PROXY_PORT:-3152}
CACHE=${PRESSLUFT_TEST_NODE_CACHE:-/var/cache/pressluft-test-node}
STATE=${PRESSLUFT_TEST_NODE_STATE:-/run/pressluft-test-node/$NAME}
NS=$NAME
MIRROR=http://deb.debian.org/debian
INCLUDE=systemd,systemd-sysv,dbus,openssh-server,python3,iproute2
# The tarball name carries the debootstrap inputs, so changing them rebuilds instead of reusing.
TARBALL=$CACHE/rootfs-bookworm-$(printf '%s %s' "$MIRROR" "$INCLUDE" | sha256sum | cut -c1-12).tar

log() { printf 'test-node: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# Starts a long-lived helper in its own session with no inherited stdio, so that callers waiting
# on our output (execa in the tests) are not held open by it; its pid goes to $STATE/<name>.pid.
daemon() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

ensure_rootfs_tarball() {
  [ -f "$TARBALL" ] && return
  log "building rootfs with debootstrap (about 1-2 min, cached as $TARBALL)"
  mkdir -p "$CACHE"
  local build
  build=$(mktemp -d "$CACHE/build.XXXXXX")
  debootstrap --variant=minbase --include="$INCLUDE" bookworm "$build" "$MIRROR" >"$build.log" 2>&1 \
    || { rm -rf "$build"; die "debootstrap failed, see $build.log"; }
  tar -C "$build" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$build" "$build.log"
}

configure_rootfs() {
  local root=$1 pubkey=$2
  rm -f "$root"/etc/ssh/ssh_host_*
  chroot "$root" ssh-keygen -A >/dev/null
  printf 'ListenAddress 127.0.0.1\n' >"$root/etc/ssh/sshd_config.d/10-test-node.conf"
  install -d -m 0700 "$root/root/.ssh"
  install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
  printf 'Acquire::http::Proxy "http://127.0.0.1:3142";\nAcquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/01pressluft-test-proxy"
  # A disposable node needs no crash safety; skipping dpkg's fsyncs shortens the first converge.
  printf 'force-unsafe-io\n' >"$root/etc/dpkg/dpkg.cfg.d/pressluft-test-unsafe-io"
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  printf '%s\n' "$NAME" >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$NAME" >"$root/etc/hosts"
  : >"$root/etc/resolv.conf"
}

start_proxy() {
  mkdir -p "$CACHE/apt-cacher-ng" "$STATE/acng-log"
  # ForceManaged: only the remapped Debian archives are fetched; anything else is refused.
  cat >"$STATE/acng.conf" <<ACNG
CacheDir: $CACHE/apt-cacher-ng
LogDir: $STATE/acng-log
SupportDir: /usr/lib/apt-cacher-ng
Port: $PROXY_PORT
BindAddress: 127.0.0.1
Remap-debrep: deb.debian.org/debian ; http://deb.debian.org/debian/
Remap-secdeb: deb.debian.org/debian-security ; http://deb.debian.org/debian-security/
ForceManaged: 1
ForeGround: 1
ReportPage: acng-report.html
ACNG
  daemon acng apt-cacher-ng -c "$STATE" ForeGround=1
}

wait_for() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up"
}

ssh_banner() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"'; head -c 4 <&3' | grep -q '^SSH-'; }
proxy_ready() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PROXY_PORT"; }

print_target() { printf 'PRESSLUFT_TEST_NODE=127.0.0.1:%s\n' "$PORT"; }

cmd_up() {
  local pubkey=${1:-${PRESSLUFT_TEST_NODE_PUBKEY_FILE:-}}
  [ -n "$pubkey" ] && [ -f "$pubkey" ] || die "usage: $0 up PUBKEY_FILE (or PRESSLUFT_TEST_NODE_PUBKEY_FILE)"
  [ "$(id -u)" -eq 0 ] || die "needs root (netns, nspawn)"
  if alive nspawn; then
    # Reuse: make sure this caller's key is accepted too.
    grep -qxF "$(cat "$pubkey")" "$STATE/rootfs/root/.ssh/authorized_keys" || cat "$pubkey" >>"$STATE/rootfs/root/.ssh/authorized_keys"
    log "already up, reusing"
    print_target
    return
  fi
  [ -d "$STATE" ] && { log "cleaning up a stale node"; cmd_down; }
  if timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT" 2>/dev/null; then die "127.0.0.1:$PORT is already taken"; fi

  # Any failure from here on (a failed command or a die) tears down what was built so far.
  trap 'log "up failed, tearing down"; cmd_down' EXIT
  mkdir -p "$STATE"
  chmod 0700 "$STATE"
  ensure_rootfs_tarball
  mkdir "$STATE/rootfs"
  tar -C "$STATE/rootfs" -xf "$TARBALL"
  configure_rootfs "$STATE/rootfs" "$pubkey"

  ip netns add "$NS"
  ip -n "$NS" link set lo up
  start_proxy
  wait_for "apt-cacher-ng on 127.0.0.1:$PROXY_PORT" 50 proxy_ready
  daemon apt-bridge-host socat "UNIX-LISTEN:$STATE/apt.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$PROXY_PORT"
  daemon apt-bridge-node ip netns exec "$NS" socat TCP-LISTEN:3142,bind=127.0.0.1,reuseaddr,fork "UNIX-CONNECT:$STATE/apt.sock"
  daemon ssh-bridge-node ip netns exec "$NS" socat "UNIX-LISTEN:$STATE/ssh.sock,fork,unlink-early,mode=600" TCP:127.0.0.1:22
  daemon ssh-bridge-host socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$STATE/ssh.sock"

  # The host has no systemd: --register=no --keep-unit. ufw and fail2ban need CAP_NET_ADMIN.
  daemon nspawn systemd-nspawn -D "$STATE/rootfs" -M "$NAME" --boot --register=no --keep-unit \
    --network-namespace-path="/run/netns/$NS" --capability=CAP_NET_ADMIN --console=read-only
  wait_for "sshd in the node (127.0.0.1:$PORT)" 150 ssh_banner
  trap - EXIT
  log "up: root@127.0.0.1:$PORT, state in $STATE"
  print_target
}

stop_pid() {
  local name=$1 grace=$2
  [ -f "$STATE/$name.pid" ] || return 0
  local pid
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$STATE/$name.pid"
}

cmd_down() {
  trap - EXIT
  # The node first (a clean systemd shutdown takes about 2 s), then the bridges into its netns.
  stop_pid nspawn 20
  for helper in ssh-bridge-host ssh-bridge-node apt-bridge-node apt-bridge-host acng; do stop_pid "$helper" 3; done
  if ip netns list | grep -qw "^$NS"; then ip netns del "$NS"; fi
  if [ -d "$STATE" ]; then
    findmnt -rn -o TARGET | grep -q "^$STATE" && die "mounts left under $STATE"
    rm -rf "$STATE"
  fi
  log "down"
}

cmd_status() {
  if alive nspawn; then log "up"; print_target; else log "down"; return 1; fi
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: $0 up [PUBKEY_FILE] | down | status" ;;
esac
