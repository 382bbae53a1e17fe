#!/usr/bin/env bash
# bench-compare.sh: old binary against new binary, in the same run.
#
#   scripts/bench-compare.sh [OLD_REV]
#
# Builds stored from OLD_REV (default: $BENCH_OLD, else the commit before
# issue 12's write-path work) into a temporary directory, then runs ROUNDS
# rounds; each round starts a fresh three-server cluster of each binary in
# turn (old first in odd rounds, new first in even ones, so drift in the
# machine's load falls on both), runs the same storebench suite subset
# against it with the new storebench, and stops it. At the end
# `storebench compare` prints the medians, the new/old ratios and the
# relative aims (docs/benchmarks.md, "Old against new").
#
# Environment:
#   ROUNDS       rounds (default 2)
#   COMPARE_ONLY suite ids (default put-1-512,put-100-512,put-100-4k,watch-1k)
#   BENCH_FLAGS  extra storebench flags (e.g. --scale 0.5)
#   BASE_PORT    first port of the old cluster; the new one uses +100
#                (default 18700)
#   KEEP_DIR     1: keep the temporary directory (results, logs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_REV=${1:-${BENCH_OLD:-ac7d277}}
ROUNDS=${ROUNDS:-2}
COMPARE_ONLY=${COMPARE_ONLY:-put-1-512,put-100-512,put-100-4k,watch-1k}
BENCH_FLAGS=${BENCH_FLAGS:-}
BASE_PORT=${BASE_PORT:-18700}
GO=${GO:-go}

die() { echo "bench-compare.sh: $*" >&2; exit 1; }

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
git -C "$ROOT" rev-parse --verify --quiet "$OLD_REV^{commit}" >/dev/null ||
  die "unknown revision '$OLD_REV' (pass a commit, tag or branch of this repository)"

work=$(mktemp -d "${TMPDIR:-/tmp}/chainstore-compare.XXXXXX")
running=()
cleanup() {
  local d
  for d in "${running[@]}"; do
    CLUSTER_DIR=$d/cluster BASE_PORT=$(cat "$d/port") BIN_DIR=$d/bin "$(cat "$d/script")" down >/dev/null 2>&1 || true
  done
  if [[ "${KEEP_DIR:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== building old ($OLD_REV) and new (work tree) binaries"
mkdir -p "$work/src" "$work/old/bin" "$work/new/bin"
git -C "$ROOT" archive "$OLD_REV" | tar -x -C "$work/src"
(cd "$work/src" && "$GO" build -o "$work/old/bin/" ./cmd/stored ./cmd/storectl)
(cd "$ROOT" && "$GO" build -o "$work/new/bin/" ./cmd/stored ./cmd/storectl ./cmd/storebench)
echo "$BASE_PORT" >"$work/old/port"
echo $((BASE_PORT + 100)) >"$work/new/port"
# Each side runs with its own revision's cluster.sh (flags may differ).
echo "$work/src/scripts/cluster.sh" >"$work/old/script"
echo "$ROOT/scripts/cluster.sh" >"$work/new/script"

# run_one VARIANT ROUND: a fresh cluster of VARIANT, the suite, stop.
run_one() {
  local v=$1 r=$2 d=$work/$1 port script
  port=$(cat "$d/port")
  script=$(cat "$d/script")
  rm -rf "$d/cluster"
  running=("$d")
  echo "== round $r: $v"
  CLUSTER_DIR=$d/cluster BASE_PORT=$port BIN_DIR=$d/bin LOG_LEVEL=warn "$script" up >/dev/null
  local addrs=127.0.0.1:$((port + 2)),127.0.0.1:$((port + 12)),127.0.0.1:$((port + 22))
  # shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
  "$work/new/bin/storebench" suite --addr "$addrs" --only "$COMPARE_ONLY" --progress off \
    --json "$work/$v-$r.json" $BENCH_FLAGS >"$work/$v-$r.txt" 2>&1 ||
    { cat "$work/$v-$r.txt" >&2; die "storebench failed against the $v cluster (round $r)"; }
  CLUSTER_DIR=$d/cluster BASE_PORT=$port BIN_DIR=$d/bin "$script" down >/dev/null
  running=()
}

old_files="" new_files=""
for ((r = 1; r <= ROUNDS; r++)); do
  echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  if ((r % 2 == 1)); then order=(old new); else order=(new old); fi
  for v in "${order[@]}"; do run_one "$v" "$r"; done
  old_files+="${old_files:+,}$work/old-$r.json"
  new_files+="${new_files:+,}$work/new-$r.json"
done
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$work/new/bin/storebench" compare --old "$old_files" --new "$new_files"
