#!/usr/bin/env bash
# compare-put.sh: storebench put at 100 clients and at 1 client against a
# fresh three-server cluster of each of two builds, interleaved (old, new,
# old, new, ...), with each run's disk cost from the servers' /proc/PID/io
# (write_bytes, write syscalls) and, when perf can count syscall
# tracepoints, their fsync and fdatasync calls, all per committed write and
# summed over the three servers. docs/benchmarks.md, Issue 12, Log store.
#
#   OLD_BIN=/tmp/old/bin NEW_BIN=bin scripts/compare-put.sh
#
# Build the old binaries from a base commit with
#   mkdir -p /tmp/old-src && git archive BASE | tar -x -C /tmp/old-src &&
#   (cd /tmp/old-src && go build -o /tmp/old/bin/ ./cmd/...)
#
# Environment: OLD_BIN, NEW_BIN (directories holding stored and storectl;
# storebench is taken from NEW_BIN), BASE_PORT (default 21400), ROUNDS
# (default 2), TOTAL_100 and TOTAL_1 (puts per run: 20000 and 2000),
# ENTRY_SIZE (512).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_BIN=${OLD_BIN:?set OLD_BIN to the bin directory of the old build}
NEW_BIN=${NEW_BIN:-$ROOT/bin}
BASE_PORT=${BASE_PORT:-21400}
ROUNDS=${ROUNDS:-2}
TOTAL_100=${TOTAL_100:-20000}
TOTAL_1=${TOTAL_1:-2000}
ENTRY_SIZE=${ENTRY_SIZE:-512}
ADDR=127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 12)),127.0.0.1:$((BASE_PORT + 22))
PERF=0
if command -v perf >/dev/null && [[ $(perf list 2>/dev/null | grep -c 'syscalls:sys_enter_fdatasync') -gt 0 ]]; then PERF=1; fi

# io_sum DIR: write_bytes and syscw summed over the three servers.
io_sum() {
  local wb=0 sc=0 pid
  for n in 1 2 3; do
    pid=$(cat "$1/n$n/stored.pid")
    wb=$((wb + $(awk '/^write_bytes/{print $2}' "/proc/$pid/io")))
    sc=$((sc + $(awk '/^syscw/{print $2}' "/proc/$pid/io")))
  done
  echo "$wb $sc"
}

# run DIR LABEL CLIENTS CONNS TOTAL
run() {
  local dir=$1 label=$2 clients=$3 conns=$4 total=$5 pids perfpid="" perfout wb0 sc0 wb1 sc1
  pids=$(for n in 1 2 3; do cat "$dir/n$n/stored.pid"; done | paste -sd,)
  perfout=$dir/perf.txt
  read -r wb0 sc0 < <(io_sum "$dir")
  if [[ $PERF == 1 ]]; then
    perf stat -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' -p "$pids" -o "$perfout" -- sleep 3600 &
    perfpid=$!
  fi
  echo "== $label clients=$clients load: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$NEW_BIN/storebench" put --addr "$ADDR" --clients "$clients" --conns "$conns" --total "$total" \
    --entry-size "$ENTRY_SIZE" --keys 1000 --progress off
  read -r wb1 sc1 < <(io_sum "$dir")
  local syncs=""
  if [[ -n $perfpid ]]; then
    # perf stat prints its counts when its workload (the sleep) ends.
    kill "$(pgrep -P "$perfpid")" 2>/dev/null || true
    wait "$perfpid" || true
    local fs fds
    fs=$(awk '/sys_enter_fsync/{gsub(",","",$1); print $1}' "$perfout")
    fds=$(awk '/sys_enter_fdatasync/{gsub(",","",$1); print $1}' "$perfout")
    syncs=$(awk -v a="$fs" -v b="$fds" -v t="$total" 'BEGIN{printf " fsync %.2f fdatasync %.2f", a/t, b/t}')
  fi
  awk -v wb=$((wb1 - wb0)) -v sc=$((sc1 - sc0)) -v t="$total" -v s="$syncs" \
    'BEGIN{printf "   per write, 3 servers: write_bytes %d write_syscalls %.2f%s\n", wb/t, sc/t, s}'
}

for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    bin=$OLD_BIN
    [[ $which == new ]] && bin=$NEW_BIN
    dir=$(mktemp -d "${TMPDIR:-/tmp}/compare-put-XXXXXX")
    export CLUSTER_DIR=$dir BASE_PORT LOG_LEVEL=warn BIN_DIR=$bin
    "$ROOT/scripts/cluster.sh" up >/dev/null
    run "$dir" "$which round $round" 100 10 "$TOTAL_100"
    run "$dir" "$which round $round" 1 1 "$TOTAL_1"
    "$ROOT/scripts/cluster.sh" down >/dev/null
    rm -rf "$dir"
  done
done
