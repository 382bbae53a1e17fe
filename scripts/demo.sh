#!/usr/bin/env bash
# demo.sh: watch gRPC traffic move as config entries and health change.
# Run it with `make demo` (which builds bin/ first); Ctrl-C stops it and
# cleans up at any point.
#
# It starts a three-server cluster in a temporary directory
# (scripts/cluster.sh, BASE_PORT 19500: gRPC on 19502, 19512, 19522), four
# gRPC backends of service web on loopback (bin/storedemo backend: v1-a
# and v1-b with version=v1, v2, canary), registers them in the catalog,
# and a stock grpc-go xDS client (bin/storedemo client, xds:///web) that
# prints once a second which backends answered its calls, every 5th call
# carrying the metadata x-canary: 1. Then it walks through the steps,
# DEMO_STEP_SECONDS apart:
#
#   1. splitter 100/0   all traffic on v1
#   2. splitter 90/10   about 10% on v2
#   3. splitter 50/50
#   4. router           x-canary: 1 goes to canary (the client's every 5th call)
#   5. failover         both v1 instances fail their checks: the resolver
#                       fails v1 over to v2
#   6. restore          v1 passes again; router and splitter deleted: all on v1
#
# Environment:
#   DEMO_STEP_SECONDS  seconds per step (default 6)
#   DEMO_BASE_PORT     first cluster port (default 19500)
#   DEMO_RATE          client calls per second (default 50)
#   BIN_DIR            where the binaries are (default bin in the repo root)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/bin}
STEP=${DEMO_STEP_SECONDS:-6}
BASE_PORT=${DEMO_BASE_PORT:-19500}
RATE=${DEMO_RATE:-50}
STORECTL=$BIN_DIR/storectl
STOREDEMO=$BIN_DIR/storedemo

for b in stored storectl storedemo; do
  [[ -x "$BIN_DIR/$b" ]] || { echo "demo.sh: $BIN_DIR/$b missing: run 'make demo' (or 'make build')" >&2; exit 1; }
done
[[ "$STEP" =~ ^[0-9]+$ && "$STEP" -ge 1 ]] || { echo "demo.sh: DEMO_STEP_SECONDS must be a whole number >= 1" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/chainstore-demo.XXXXXX")
export STORE_ADDR=127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 12)),127.0.0.1:$((BASE_PORT + 22))
PIDS=()
CLEANED=""

cleanup() {
  [[ -z "$CLEANED" ]] || return 0
  CLEANED=1
  set +e
  echo
  echo "== cleaning up: client, backends, cluster (a graceful stop takes a few seconds), $DIR"
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  CLUSTER_DIR=$DIR/cluster BASE_PORT=$BASE_PORT BIN_DIR=$BIN_DIR "$ROOT/scripts/cluster.sh" down >/dev/null 2>&1
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner() {
  echo
  echo "==== $* ===="
}

# put writes the entry on stdin (HCL).
put() { "$STORECTL" put - >/dev/null; }

banner "starting a 3-server cluster in $DIR (gRPC $STORE_ADDR)"
mkdir -p "$DIR/cluster"
CLUSTER_DIR=$DIR/cluster BASE_PORT=$BASE_PORT BIN_DIR=$BIN_DIR LOG_LEVEL=warn "$ROOT/scripts/cluster.sh" up | sed 's/^/  /'

banner "starting backends v1-a, v1-b (version v1), v2, canary and registering them as service web"
# name:version
for b in v1-a:v1 v1-b:v1 v2:v2 canary:canary; do
  id=${b%%:*}
  version=${b#*:}
  "$STOREDEMO" backend --name "$version" --id "$id" --addr 127.0.0.1:0 --addr-file "$DIR/$id.addr" >/dev/null &
  PIDS+=($!)
done
for b in v1-a:v1 v1-b:v1 v2:v2 canary:canary; do
  id=${b%%:*}
  version=${b#*:}
  for _ in $(seq 100); do [[ -s "$DIR/$id.addr" ]] && break; sleep 0.05; done
  [[ -s "$DIR/$id.addr" ]] || { echo "demo.sh: backend $id did not start" >&2; exit 1; }
  addr=$(<"$DIR/$id.addr")
  "$STORECTL" catalog register --service web --id "web-$id" --address 127.0.0.1 --port "${addr##*:}" \
    --meta version="$version" --ttl 1h | sed 's/^/  /'
  "$STORECTL" catalog check "web-$id" pass >/dev/null
done
"$STORECTL" catalog instances web | sed 's/^/  /'

banner "entries: web speaks gRPC; resolver: subsets v1, v2, canary (by Service.Meta.version), default v1, failover v1 -> v2"
put <<'HCL'
kind     = "service-defaults"
name     = "web"
protocol = "grpc"
HCL
put <<'HCL'
kind           = "service-resolver"
name           = "web"
default_subset = "v1"
subsets = {
  v1     = { filter = "Service.Meta.version == v1" }
  v2     = { filter = "Service.Meta.version == v2" }
  canary = { filter = "Service.Meta.version == canary" }
}
failover = {
  v1 = { service_subset = "v2" }
}
HCL

split() {
  put <<HCL
kind = "service-splitter"
name = "web"
splits = [
  { weight = $1, service_subset = "v1" },
  { weight = $2, service_subset = "v2" },
]
HCL
}

banner "step 1/6: splitter v1 100 / v2 0"
split 100 0
echo "  client: xds:///web, $RATE calls/s, x-canary: 1 on every 5th call; shares of the answers per backend, once a second"
"$STOREDEMO" client --target xds:///web --xds-server "$STORE_ADDR" --rate "$RATE" \
  --header x-canary=1 --header-every 5 --show v1,v2,canary &
PIDS+=($!)
sleep "$STEP"

banner "step 2/6: splitter v1 90 / v2 10"
split 90 10
sleep "$STEP"

banner "step 3/6: splitter v1 50 / v2 50"
split 50 50
sleep "$STEP"

banner "step 4/6: router: header x-canary: 1 -> subset canary (every 5th call: ~20%); the rest still split 50/50"
put <<'HCL'
kind = "service-router"
name = "web"
routes = [
  {
    match {
      http {
        header = [{ name = "x-canary", exact = "1" }]
      }
    }
    destination {
      service_subset = "canary"
    }
  },
]
HCL
sleep "$STEP"

banner "step 5/6: failover: both v1 instances fail their checks -> the resolver sends v1's share to v2"
"$STORECTL" catalog check web-v1-a fail --note "failed by the demo" >/dev/null
"$STORECTL" catalog check web-v1-b fail --note "failed by the demo" >/dev/null
"$STORECTL" catalog instances web | sed 's/^/  /'
sleep "$STEP"

banner "step 6/6: restore: v1 passing again, router and splitter deleted -> all traffic on v1"
"$STORECTL" catalog check web-v1-a pass >/dev/null
"$STORECTL" catalog check web-v1-b pass >/dev/null
"$STORECTL" delete service-router web >/dev/null
"$STORECTL" delete service-splitter web >/dev/null
sleep "$STEP"

banner "done"
