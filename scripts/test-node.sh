#!/usr/bin/env bash
# A disposable Debian systemd node for the converge tests (docs/ansible.md, "The test node").
#
#   scripts/test-node.sh up [--distro bookworm|trixie] [HOST_KEY] PUBKEY_FILE   boot it (or reuse it); prints PRESSLUFT_TEST_NODE=127.0.0.1:<port>
#   scripts/test-node.sh host-key [--distro …] HOST_KEY                         give the running node that host key, as a rebuild would
#   scripts/test-node.sh down [--distro …]                                      stop it; no process, namespace or mount is left behind
#   scripts/test-node.sh status [--distro …]                                    say whether it runs, and where
#
# HOST_KEY plays cloud-init (issue 10): `--user-data FILE` takes ssh_keys.ed25519_private/public from
# the #cloud-config the control plane sent at create (the simulator keeps it), `--host-key FILE` an
# OpenSSH ed25519 private key file. The node's other host keys are deleted (ssh_deletekeys) and sshd
# serves that key only. Without HOST_KEY a fresh node gets keys of its own. Every up, host-key and
# status prints PRESSLUFT_TEST_NODE_HOST_KEY=ssh-ed25519 <base64>: what the node presents right now.
#
# Two distributions stand in for Ubuntu 24.04 (ADR 0020, ADR 0023): Debian 12 (bookworm, the
# default: node pressluft-test-node on 127.0.0.1:2222) and Debian 13 (trixie: node
# pressluft-test-node-trixie on 127.0.0.1:2223). Both can run at once. PRESSLUFT_TEST_NODE_DISTRO
# picks the distribution when --distro is not given.
#
# Network safety: the node lives in its own network namespace and never sees a real interface;
# its only link is a veth pair to a second namespace of ours (<name>-client), where tests put
# client addresses. Its sshd is reached at 127.0.0.1:$PORT on the host through socat over a Unix socket; its apt
# reaches deb.debian.org only through an apt-cacher-ng we start on host loopback, which is
# restricted to Debian's mirror. ufw and fail2ban inside the node can only touch the node's netns.
set -euo pipefail

DISTRO=${PRESSLUFT_TEST_NODE_DISTRO:-bookworm}
USER_DATA=
HOST_KEY=
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --distro) DISTRO=${2:?--distro needs bookworm or trixie}; shift 2 ;;
    --distro=*) DISTRO=${1#--distro=}; shift ;;
    --user-data) USER_DATA=${2:?--user-data needs a file}; shift 2 ;;
    --host-key) HOST_KEY=${2:?--host-key needs a private key file}; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"

case $DISTRO in
  bookworm | debian12 | 12) SUITE=bookworm; default_name=pressluft-test-node; default_port=2222; default_proxy_port=3152 ;;
  trixie | debian13 | 13) SUITE=trixie; default_name=pressluft-test-node-trixie; default_port=2223; default_proxy_port=3153 ;;
  *) printf 'test-node: unknown distro %s (bookworm or trixie)\n' "$DISTRO" >&2; exit 1 ;;
esac

NAME=${PRESSLUFT_TEST_NODE_NAME:-$default_name}
PORT=${PRESSLUFT_TEST_NODE_PORT:-$default_port}
PROXY_PORT=${PRESSLUFT_TEST_NODE_PROXY_PORT:-$default_proxy_port}
CACHE=${PRESSLUFT_TEST_NODE_CACHE:-/var/cache/pressluft-test-node}
STATE=${PRESSLUFT_TEST_NODE_STATE:-/run/pressluft-test-node/$NAME}
NS=$NAME
# A second netns wired to the node by a veth pair: the "internet" side for tests that need a client
# address that is not the node's own (fail2ban ignores its own addresses). Only our two namespaces
# are on that link; 198.18.0.0/15 is RFC 2544 benchmarking space, never routed.
CLIENT_NS=$NAME-client
NODE_LINK_ADDR=198.18.0.1
MIRROR=http://deb.debian.org/debian
# python3-apt: Ubuntu's cloud images ship it. Without it, Ansible's first apt task installs it
# with a bare `apt-get update`, which fails at once, instead of waiting, while a first boot's
# apt run holds the lists lock.
INCLUDE=systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,iproute2

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

# Builds the rootfs into $1 and packs it into $2. The build dir comes from mktemp -d (0700): it is
# made 0755 root:root before packing, because the tarball's `./` entry becomes the node's `/`, and
# a 0700 `/` stops every non-root daemon (MariaDB: status=200/CHDIR; _apt cannot read its lists).
build_rootfs() {
  local dir=$1 tarball=$2
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$dir" "$MIRROR"
  chown root:root "$dir"
  chmod 0755 "$dir"
  tar -C "$dir" --numeric-owner -cf "$tarball" .
}

# Writes apt-cacher-ng's configuration for a cache dir and a log dir.
# ForceManaged: only the remapped Debian archives are fetched; anything else is refused.
write_acng_conf() {
  local conf=$1 cache_dir=$2 log_dir=$3
  cat >"$conf" <<ACNG
CacheDir: $cache_dir
LogDir: $log_dir
SupportDir: /usr/lib/apt-cacher-ng
Port: $PROXY_PORT
BindAddress: 127.0.0.1
Remap-debrep: deb.debian.org/debian ; $MIRROR/
Remap-secdeb: deb.debian.org/debian-security ; http://deb.debian.org/debian-security/
ForceManaged: 1
ForeGround: 1
ReportPage: acng-report.html
ACNG
}

# Every cache is keyed on the code and inputs that build it, so a changed recipe never reuses an
# artefact built by an older one (a tarball with a 0700 root did exactly that).
cache_key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
ROOTFS_KEY=$(cache_key "$(declare -f build_rootfs)" "$SUITE" "$INCLUDE" "$MIRROR" "$(debootstrap --version 2>/dev/null || true)")
TARBALL=$CACHE/rootfs-$SUITE-$ROOTFS_KEY.tar
APT_CACHE=$CACHE/apt-cacher-ng-$SUITE-$(cache_key "$(declare -f write_acng_conf)" "$SUITE" "$MIRROR")

ensure_rootfs_tarball() {
  mkdir -p "$CACHE"
  # One builder per key: two nodes coming up at once wait for each other instead of racing.
  exec 9>"$TARBALL.lock"
  flock 9
  if [ ! -f "$TARBALL" ]; then
    rm -rf "$CACHE/build-$SUITE".*   # left by a builder that was killed; we hold the lock
    log "building the $SUITE rootfs with debootstrap (about 1-2 min, cached as $TARBALL)"
    local build
    build=$(mktemp -d "$CACHE/build-$SUITE.XXXXXX")
    build_rootfs "$build" "$TARBALL.tmp" >"$build.log" 2>&1 \
      || { rm -rf "$build" "$TARBALL.tmp"; die "building the rootfs failed, see $build.log"; }
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$build" "$build.log"
    # Tarballs of this suite under any other key were built by another recipe: never use them.
    find "$CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar*" ! -name "${TARBALL##*/}" ! -name "${TARBALL##*/}.lock" -delete
  fi
  flock -u 9
}

# Refuses a rootfs whose / is not 0755 root:root: inside the node, non-root daemons could not
# traverse it, and the converge would fail far from the cause.
check_rootfs_root() {
  local found
  found=$(stat -c '%a %u:%g' "$1")
  [ "$found" = "755 0:0" ] || die "refusing the rootfs: its / is mode/owner '$found', not '755 0:0' ($TARBALL; delete it to rebuild)"
}

configure_rootfs() {
  local root=$1 pubkey=$2
  rm -f "$root"/etc/ssh/ssh_host_*
  chroot "$root" ssh-keygen -A >/dev/null
  printf 'ListenAddress 127.0.0.1\nListenAddress %s\n' "$NODE_LINK_ADDR" >"$root/etc/ssh/sshd_config.d/10-test-node.conf"
  # OpenSSH 9.8+ (trixie's 10.0) refuses a source address for a while after failed or unauthenticated
  # connections (PerSourcePenalties). Every test connection reaches the node from 127.0.0.1 through
  # socat, so the tests' deliberate refusals (host keys, logins, port probes) would close the next
  # test's connection. Ubuntu 24.04, the target, ships OpenSSH 9.6, which has no penalties.
  if [ "$SUITE" = trixie ]; then printf 'PerSourcePenalties no\n' >>"$root/etc/ssh/sshd_config.d/10-test-node.conf"; fi
  install -d -m 0700 "$root/root/.ssh"
  install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
  printf 'Acquire::http::Proxy "http://127.0.0.1:3142";\nAcquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/01pressluft-test-proxy"
  # A disposable node needs no crash safety; skipping dpkg's fsyncs shortens the first converge.
  printf 'force-unsafe-io\n' >"$root/etc/dpkg/dpkg.cfg.d/pressluft-test-unsafe-io"
  rm -f "$root"/etc/apt/sources.list.d/*.sources
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
  printf '%s\n' "$NAME" >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$NAME" >"$root/etc/hosts"
  : >"$root/etc/resolv.conf"
}

start_proxy() {
  mkdir -p "$APT_CACHE" "$STATE/acng-log"
  write_acng_conf "$STATE/acng.conf" "$APT_CACHE" "$STATE/acng-log"
  daemon acng apt-cacher-ng -c "$STATE" ForeGround=1
}

wait_for() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up"
}

ssh_banner() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"'; head -c 4 <&3' | grep -q '^SSH-'; }
proxy_ready() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PROXY_PORT"; }

# What the node presents, asked over the wire as any client would (never port 22: that is this host's sshd).
presented_host_key() {
  [ "$PORT" != 22 ] || die "refusing to scan 127.0.0.1:22"
  ssh-keyscan -T 5 -t ed25519 -p "$PORT" 127.0.0.1 2>/dev/null | awk '$2 == "ssh-ed25519" { print $2, $3; exit }'
}

print_target() {
  printf 'PRESSLUFT_TEST_NODE=127.0.0.1:%s\nPRESSLUFT_TEST_NODE_CLIENT_NS=%s\nPRESSLUFT_TEST_NODE_LINK_ADDR=%s\n' "$PORT" "$CLIENT_NS" "$NODE_LINK_ADDR"
  printf 'PRESSLUFT_TEST_NODE_HOST_KEY=%s\n' "$(presented_host_key)"
}

# The host key pair from --user-data (cloud-init's ssh_keys) or --host-key into $1/key and $1/key.pub.
# Returns 1 when neither was given.
host_key_files() {
  local out=$1
  if [ -n "$USER_DATA" ]; then
    [ -f "$USER_DATA" ] || die "no such user-data file: $USER_DATA"
    python3 - "$USER_DATA" "$out" <<'PY' || die "the user-data holds no ssh_keys.ed25519_private/ed25519_public"
import os, sys, yaml
text = open(sys.argv[1]).read()
if not text.startswith("#cloud-config"):
    sys.exit("not a #cloud-config document")
keys = (yaml.safe_load(text) or {}).get("ssh_keys") or {}
private, public = keys.get("ed25519_private"), keys.get("ed25519_public")
if not (isinstance(private, str) and isinstance(public, str)):
    sys.exit(1)
fd = os.open(os.path.join(sys.argv[2], "key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, (private.rstrip("\n") + "\n").encode())
os.close(fd)
open(os.path.join(sys.argv[2], "key.pub"), "w").write(public.strip() + "\n")
PY
  elif [ -n "$HOST_KEY" ]; then
    [ -f "$HOST_KEY" ] || die "no such host key file: $HOST_KEY"
    install -m 0600 "$HOST_KEY" "$out/key"
    ssh-keygen -y -f "$out/key" >"$out/key.pub" || die "not an unencrypted OpenSSH private key: $HOST_KEY"
  else
    return 1
  fi
  # Both halves must be one ed25519 key: a mismatched pair would make sshd present something else.
  [ "$(ssh-keygen -y -f "$out/key" | cut -d' ' -f1-2)" = "$(cut -d' ' -f1-2 "$out/key.pub")" ] || die "the host key's private and public halves differ"
  grep -q '^ssh-ed25519 ' "$out/key.pub" || die "the host key is not ed25519"
}

# As cloud-init does with ssh_deletekeys and ssh_keys: every host key goes, the given one is installed.
install_host_key() {
  local root=$1 from=$2
  rm -f "$root"/etc/ssh/ssh_host_*
  install -m 0600 -o root -g root "$from/key" "$root/etc/ssh/ssh_host_ed25519_key"
  install -m 0644 -o root -g root "$from/key.pub" "$root/etc/ssh/ssh_host_ed25519_key.pub"
}

# HOST_KEY into the running node, then sshd restarted in the node (through its init's namespaces:
# the host has no machinectl). The key files pass through $STATE (0700) and are removed at once.
cmd_host_key() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  alive nspawn || die "the $SUITE node is not up"
  local tmp init
  tmp=$(mktemp -d "$STATE/host-key.XXXXXX")
  host_key_files "$tmp" || { rm -rf "$tmp"; die "usage: $0 host-key [--distro …] --user-data FILE | --host-key FILE"; }
  install_host_key "$STATE/rootfs" "$tmp"
  rm -rf "$tmp"
  init=$(pgrep -P "$(cat "$STATE/nspawn.pid")" | head -1)
  nsenter -t "$init" -a systemctl restart ssh.service
  wait_for "sshd in the node (127.0.0.1:$PORT)" 150 ssh_banner
  log "host key installed: $(presented_host_key)"
  print_target
}

cmd_up() {
  local pubkey=${1:-${PRESSLUFT_TEST_NODE_PUBKEY_FILE:-}}
  [ -n "$pubkey" ] && [ -f "$pubkey" ] || die "usage: $0 up [--distro bookworm|trixie] PUBKEY_FILE (or PRESSLUFT_TEST_NODE_PUBKEY_FILE)"
  [ "$(id -u)" -eq 0 ] || die "needs root (netns, nspawn)"
  if alive nspawn; then
    # Reuse: make sure this caller's key is accepted too.
    grep -qxF "$(cat "$pubkey")" "$STATE/rootfs/root/.ssh/authorized_keys" || cat "$pubkey" >>"$STATE/rootfs/root/.ssh/authorized_keys"
    log "already up, reusing"
    if [ -n "$USER_DATA$HOST_KEY" ]; then cmd_host_key; else print_target; fi
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
  tar -C "$STATE/rootfs" --numeric-owner -xf "$TARBALL"
  check_rootfs_root "$STATE/rootfs"
  configure_rootfs "$STATE/rootfs" "$pubkey"
  mkdir "$STATE/host-key"
  if host_key_files "$STATE/host-key"; then install_host_key "$STATE/rootfs" "$STATE/host-key"; fi
  rm -rf "$STATE/host-key"

  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip netns add "$CLIENT_NS"
  ip -n "$CLIENT_NS" link set lo up
  ip -n "$NS" link add pl-client type veth peer name pl-node netns "$CLIENT_NS"
  ip -n "$NS" addr add "$NODE_LINK_ADDR/24" dev pl-client
  ip -n "$NS" link set pl-client up
  ip -n "$CLIENT_NS" link set pl-node up
  start_proxy
  wait_for "apt-cacher-ng on 127.0.0.1:$PROXY_PORT" 50 proxy_ready
  daemon apt-bridge-host socat "UNIX-LISTEN:$STATE/apt.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$PROXY_PORT"
  daemon apt-bridge-node ip netns exec "$NS" socat TCP-LISTEN:3142,bind=127.0.0.1,reuseaddr,fork "UNIX-CONNECT:$STATE/apt.sock"
  daemon ssh-bridge-node ip netns exec "$NS" socat "UNIX-LISTEN:$STATE/ssh.sock,fork,unlink-early,mode=600" TCP:127.0.0.1:22
  daemon ssh-bridge-host socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$STATE/ssh.sock"

  # The host has no systemd: --register=no --keep-unit. ufw and fail2ban need CAP_NET_ADMIN.
  # systemd >= 256 (trixie) refuses to boot on a cgroup v1 or hybrid hierarchy, so the node always
  # gets the unified one, whatever the host mounts.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 daemon nspawn systemd-nspawn -D "$STATE/rootfs" -M "$NAME" --boot --register=no --keep-unit \
    --network-namespace-path="/run/netns/$NS" --capability=CAP_NET_ADMIN --console=read-only
  wait_for "sshd in the node (127.0.0.1:$PORT)" 150 ssh_banner
  trap - EXIT
  log "up ($SUITE): root@127.0.0.1:$PORT, clients in netns $CLIENT_NS reach it at $NODE_LINK_ADDR, state in $STATE"
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
  # Exact names: the bookworm node's name is a prefix of the trixie node's.
  for ns in "$CLIENT_NS" "$NS"; do
    if ip netns list | awk '{print $1}' | grep -xF "$ns" >/dev/null; then ip netns del "$ns"; fi
  done
  if [ -d "$STATE" ]; then
    findmnt -rn -o TARGET | grep -E "^$STATE(/|\$)" >/dev/null && die "mounts left under $STATE"
    rm -rf "$STATE"
  fi
  log "down"
}

cmd_status() {
  if alive nspawn; then log "up ($SUITE)"; print_target; else log "down ($SUITE)"; return 1; fi
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  host-key) cmd_host_key ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: $0 up [--distro bookworm|trixie] [--user-data FILE | --host-key FILE] PUBKEY_FILE | host-key [--distro …] (--user-data FILE | --host-key FILE) | down [--distro …] | status [--distro …]" ;;
esac
