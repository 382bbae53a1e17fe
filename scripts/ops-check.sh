#!/usr/bin/env bash
# ops-check.sh: run every procedure of docs/operations.md against a real
# local three-server cluster (scripts/cluster.sh, in a temporary directory)
# and check its outcome. `make ops-check` builds the binaries and runs it.
#
#   1. backup:          storectl snapshot save, inspect
#   2. restore:         write more, storectl snapshot restore, every server
#                       holds the snapshot's state
#   3. refusal:         a corrupt file is refused, nothing changes
#   4. rolling restart: each server in turn stopped (SIGTERM) and started
#                       again while writes continue; three voters after each
#   5. dead server:     a server is killed, its data wiped, and it is
#                       started again as a replacement; three voters again
#   6. versions:        stored --version and storectl version agree
#
# Environment: BASE_PORT (default 19500), BIN_DIR (default bin).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BIN_DIR=${BIN_DIR:-$ROOT/bin}
export BASE_PORT=${BASE_PORT:-19500}
export LOG_LEVEL=${LOG_LEVEL:-warn}
export UP_TIMEOUT=${UP_TIMEOUT:-60}
CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chainstore-ops.XXXXXX")
export CLUSTER_DIR
CLUSTER=$ROOT/scripts/cluster.sh
CTL=$BIN_DIR/storectl
ADDRS=127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 12)),127.0.0.1:$((BASE_PORT + 22))

cleanup() {
  "$CLUSTER" down >/dev/null 2>&1 || true
  rm -rf "$CLUSTER_DIR"
}
trap cleanup EXIT

step() { echo; echo "== $*"; }
fail() { echo "ops-check: FAIL: $*" >&2; exit 1; }
ctl() { "$CTL" --addr "$ADDRS" "$@"; }

# timeout_of NODE-ADDR: the ConnectTimeout of resolver web read (stale)
# from one server's own state.
timeout_of() {
  "$CTL" --addr "$1" get --stale service-resolver web 2>/dev/null | sed -n 's/.*"ConnectTimeout": "\([^"]*\)".*/\1/p'
}

resolver() {
  printf 'kind = "service-resolver"\nname = "web"\nconnect_timeout = "%s"\n' "$1" | ctl put - >/dev/null
}

# wait_all VALUE: every server holds resolver web with ConnectTimeout VALUE.
wait_all() {
  local deadline=$((SECONDS + 20)) p
  while :; do
    local ok=1
    for p in 2 12 22; do
      [[ "$(timeout_of "127.0.0.1:$((BASE_PORT + p))")" == "$1" ]] || ok=0
    done
    ((ok)) && return 0
    ((SECONDS < deadline)) || fail "not every server holds web=$1"
    sleep 0.2
  done
}

step "start a cluster in $CLUSTER_DIR"
"$CLUSTER" up

step "1. backup: snapshot save and inspect"
resolver 5s
ctl snapshot save "$CLUSTER_DIR/backup.snap"
ctl snapshot inspect "$CLUSTER_DIR/backup.snap"

step "2. restore: write more, then restore the backup"
resolver 9s
wait_all 9s
ctl snapshot restore "$CLUSTER_DIR/backup.snap"
wait_all 5s
echo "every server holds the backup's state (web=5s)"

step "3. a corrupt file is refused"
cp "$CLUSTER_DIR/backup.snap" "$CLUSTER_DIR/corrupt.snap"
printf 'X' | dd of="$CLUSTER_DIR/corrupt.snap" bs=1 seek=100 conv=notrunc status=none
if ctl snapshot restore "$CLUSTER_DIR/corrupt.snap" 2>"$CLUSTER_DIR/err"; then
  fail "a corrupt snapshot was restored"
fi
grep -q "corrupt snapshot" "$CLUSTER_DIR/err" || fail "unexpected refusal: $(cat "$CLUSTER_DIR/err")"
cat "$CLUSTER_DIR/err"
wait_all 5s

step "4. rolling restart, one server at a time, writes continuing"
for n in 1 2 3; do
  "$CLUSTER" stop "$n"
  voters=$(ctl peers --json | grep -c '"voter": true' || true)
  [[ "$voters" -eq 3 ]] || fail "n$n stopped: the configuration has $voters voters, want 3 (the slot is kept)"
  resolver "1${n}s"
  "$CLUSTER" start "$n"
  wait_all "1${n}s"
done
echo "three voters while each server was away and after it returned; writes went on throughout"

step "5. replace a dead server (killed, data lost)"
"$CLUSTER" kill 3
rm -rf "$CLUSTER_DIR/n3/data"
resolver 21s
"$CLUSTER" start 3
wait_all 21s
ctl peers

step "6. versions"
"$BIN_DIR/stored" --version
ctl version

echo
echo "ops-check: all procedures passed"
