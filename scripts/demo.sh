#!/usr/bin/env bash
# `npm run demo`: the whole path on one machine, as root. It runs the control plane on embedded
# defaults with the Hetzner simulator, creates a node through the API, boots the disposable test
# node with the host key the create injected (the node plays cloud-init: every run checks that key
# strictly, issue 10), provisions it with live progress, prints the node's history, and tears
# everything down.
#
# Safety: the simulator hands out 127.0.0.1 and the node's sshPort is the test node's port
# (default 2222), never 22. Ansible can never reach this host's own sshd.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (the test node uses systemd-nspawn)" >&2; exit 1; }
bash scripts/setup.sh

NODE_PORT=${PRESSLUFT_TEST_NODE_PORT:-2222}
[ "$NODE_PORT" != 22 ] || { echo "demo: PRESSLUFT_TEST_NODE_PORT must not be 22" >&2; exit 1; }
DEMO=$(mktemp -d /tmp/pressluft-demo.XXXXXX)
API_PORT=${PRESSLUFT_DEMO_PORT:-8089}

export PRESSLUFT_DATA_DIR=$DEMO/data
export PRESSLUFT_PORT=$API_PORT
export PRESSLUFT_URL=http://127.0.0.1:$API_PORT
export PRESSLUFT_ALLOW_TEST_DISTRO=1
export PRESSLUFT_BACKOFF_MS=2000,5000,10000
export PRESSLUFT_LOG_LEVEL=${PRESSLUFT_LOG_LEVEL:-warn}
export PRESSLUFT_TEST_NODE_PORT=$NODE_PORT
# Embedded nats-server and the built-in simulator: no real server is bought.
unset NATS_URL HCLOUD_TOKEN HCLOUD_ENDPOINT PRESSLUFT_API_TOKEN

# WP-CLI cannot be downloaded here: a stand-in that answers --version, pinned by sha256 (ADR 0021).
printf '%s' '#!/usr/bin/env php
<?php
// Pressluft test stand-in for wp-cli.phar.
fwrite(STDOUT, "WP-CLI 0.0.0-pressluft-stand-in\n");
' >"$DEMO/wp-cli-stand-in.phar"
export PRESSLUFT_WP_CLI_PHAR=$DEMO/wp-cli-stand-in.phar
PRESSLUFT_WP_CLI_SHA256=$(sha256sum "$PRESSLUFT_WP_CLI_PHAR" | cut -d' ' -f1)
export PRESSLUFT_WP_CLI_SHA256

pressluft() { node bin/pressluft.js "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

SERVE_PID=
cleanup() {
  step "6. tearing down"
  if [ -n "$SERVE_PID" ]; then
    # SERVE_PID is the node process itself (started without the shell function, so no subshell
    # sits between): SIGTERM reaches it, and it stops its nats-server within 15 s (ADR 0030).
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$SERVE_PID" 2>/dev/null && { echo "demo: pressluft serve did not stop within 20 s; killing it" >&2; kill -KILL "$SERVE_PID" 2>/dev/null || true; }
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  bash scripts/test-node.sh down || true
  rm -rf "$DEMO"
  echo "done: control plane stopped, test node down, $DEMO removed"
}
trap cleanup EXIT

step "1. starting the control plane (embedded NATS, Hetzner simulator) on $PRESSLUFT_URL"
# Not through the pressluft() function: `f &` forks a subshell, $! is that subshell, and SIGTERM
# to it never reaches node. A simple command in the background is node itself, so $! is its pid.
node bin/pressluft.js serve >"$DEMO/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 120); do
  curl -fsS "$PRESSLUFT_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$DEMO/serve.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$PRESSLUFT_URL/readyz" >/dev/null || { echo "demo: the API did not become ready" >&2; cat "$DEMO/serve.log" >&2; exit 1; }
echo "ready; API token in $PRESSLUFT_DATA_DIR/api-token, log in $DEMO/serve.log"
# The built-in simulator's admin API (loopback only): the demo holds the create until the node is up.
SIM=$(grep -o '"endpoint":"http://127\.0\.0\.1:[0-9]*/v1"' "$DEMO/serve.log" | head -1 | cut -d'"' -f4)
SIM=${SIM%/v1}
[ -n "$SIM" ] || { echo "demo: the simulator's address is not in $DEMO/serve.log" >&2; exit 1; }
sim() {
  local body='{}'
  [ $# -lt 2 ] || body=$2
  curl -fsS -X POST -H 'content-type: application/json' "$SIM/__admin/$1" -d "$body" >/dev/null
}

step "2. creating the node through the API (the simulator holds the create)"
sim actions '{"durationMs":null}'
created=$(pressluft node create --name demo-node --type cx22 --location fsn1 --ssh-port "$NODE_PORT" --json)
read -r NODE_ID JOB_ID < <(node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(j.nodeId, j.jobId)' <<<"$created")
echo "node $NODE_ID, job $JOB_ID"

step "3. booting the disposable test node on 127.0.0.1:$NODE_PORT with the host key from the create's user_data"
# The #cloud-config holds the node's private host key: 0600 in the 0700 demo dir, removed at teardown.
for _ in $(seq 1 240); do
  (umask 077; curl -fsS "$SIM/__admin/state" | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")); const u = s.servers.find((v) => v.userData)?.userData; if (!u) process.exit(1); process.stdout.write(u)' >"$DEMO/user-data") && break
  sleep 0.5
done
[ -s "$DEMO/user-data" ] || { echo "demo: the simulator holds no server with user_data" >&2; exit 1; }
bash scripts/test-node.sh up --user-data "$DEMO/user-data" "$PRESSLUFT_DATA_DIR/ssh/id_ed25519.pub"
sim actions '{"durationMs":1000}'
sim actions/finish

step "4. provisioning it, with live progress"
status=0
pressluft job watch "$JOB_ID" || status=$?

step "5. the node's history"
pressluft node history "$NODE_ID"
pressluft node get "$NODE_ID"
exit "$status"
