#!/usr/bin/env bash
# cluster.sh: run a local three-server chainstore cluster (n1, n2, n3) on
# 127.0.0.1 from the binaries in bin/ (build them with `make build`).
#
#   scripts/cluster.sh up        start n1..n3 in the background; return once a
#                                leader is elected and all three are voters
#   scripts/cluster.sh down      stop every node (SIGTERM: graceful leave)
#   scripts/cluster.sh stop N    stop node N with SIGTERM (graceful leave; it
#                                keeps its voter slot for the dead-server
#                                timeout, 30 s, so `start N` finds 3 voters)
#   scripts/cluster.sh kill N    kill node N with SIGKILL (a crash)
#   scripts/cluster.sh start N   start node N again (it resumes from its data)
#   scripts/cluster.sh status    show each node's process and Raft status
#   scripts/cluster.sh run       start all three in the foreground, follow
#                                their logs, stop them all on Ctrl-C
#
# Ports: node i (1..3) uses Raft BASE_PORT+10(i-1), gossip +1, gRPC +2,
# HTTP +3, so the default BASE_PORT=8500 gives gRPC on 8502, 8512 and 8522
# and the HTTP API on 8503, 8513 and 8523.
#
# Environment:
#   CLUSTER_DIR  data, logs and pid files (default .cluster in the repo root)
#   BASE_PORT    first port (default 8500)
#   BIN_DIR      where stored and storectl are (default bin in the repo root)
#   UP_TIMEOUT   seconds `up` and `start` wait for the cluster (default 60)
#   LOG_LEVEL    stored --log-level (default info)
#   ACL          1: servers run with --acl-enabled (default deny); `up` and
#                `run` bootstrap once and keep the management SecretID in
#                $CLUSTER_DIR/bootstrap-token, used by this script's calls
#   SECURE       1: secure mode (docs/security.md). The first `up`/`run`
#                creates a CA, server certificates (one per node), a client
#                certificate and a gossip key in $CLUSTER_DIR/tls (ca.pem,
#                client.pem, client-key.pem, gossip.key); servers then
#                require TLS with client certificates on gRPC, mutual TLS
#                on Raft and encrypted gossip, and ACLs are on (SECURE=1
#                implies ACL=1: default deny, bootstrapped once, the
#                management SecretID in $CLUSTER_DIR/bootstrap-token).
#                To use storectl against it (and STORE_TOKEN):
#                  export STORE_CACERT=$CLUSTER_DIR/tls/ca.pem \
#                    STORE_CLIENT_CERT=$CLUSTER_DIR/tls/client.pem \
#                    STORE_CLIENT_KEY=$CLUSTER_DIR/tls/client-key.pem
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
BASE_PORT=${BASE_PORT:-8500}
BIN_DIR=${BIN_DIR:-$ROOT/bin}
UP_TIMEOUT=${UP_TIMEOUT:-60}
LOG_LEVEL=${LOG_LEVEL:-info}
SECURE=${SECURE:-0}
# Secure mode includes ACLs.
if [[ "$SECURE" == 1 ]]; then ACL=1; fi
TLS_DIR=$CLUSTER_DIR/tls
HOST=127.0.0.1
NODES=(1 2 3)
STORED=$BIN_DIR/stored
STORECTL=$BIN_DIR/storectl

die() { echo "cluster.sh: $*" >&2; exit 1; }

raft_port()   { echo $((BASE_PORT + 10 * ($1 - 1))); }
gossip_port() { echo $((BASE_PORT + 10 * ($1 - 1) + 1)); }
grpc_port()   { echo $((BASE_PORT + 10 * ($1 - 1) + 2)); }
grpc_addr()   { echo "$HOST:$(grpc_port "$1")"; }
http_port()   { echo $((BASE_PORT + 10 * ($1 - 1) + 3)); }
node_dir()    { echo "$CLUSTER_DIR/n$1"; }
pid_file()    { echo "$(node_dir "$1")/stored.pid"; }
log_file()    { echo "$(node_dir "$1")/stored.log"; }

# all_grpc_addrs prints the comma-separated gRPC addresses of every node.
all_grpc_addrs() {
  local out="" n
  for n in "${NODES[@]}"; do out+="${out:+,}$(grpc_addr "$n")"; done
  echo "$out"
}

# ---------------------------------------------------------------------------
# Secure mode (SECURE=1). Each step of the secure setup is one function,
# called in order by secure_setup (before the nodes start) and
# secure_after_up (once the cluster is up). ACL=1 (implied by SECURE=1)
# adds --acl-enabled and the bootstrap (acl_bootstrap, below).

secure_on() { [[ "$SECURE" == 1 ]]; }

# secure_tls_files: CA, one server certificate per node, one client
# certificate; kept across runs (delete $CLUSTER_DIR/tls to start over).
secure_tls_files() {
  [[ -f "$TLS_DIR/ca.pem" ]] && return 0
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  "$STORECTL" tls ca create --dir "$TLS_DIR" >/dev/null
  local n
  for n in "${NODES[@]}"; do
    "$STORECTL" tls cert create --server --node "n$n" --dir "$TLS_DIR" \
      --ca "$TLS_DIR/ca.pem" --ca-key "$TLS_DIR/ca-key.pem" >/dev/null
  done
  "$STORECTL" tls cert create --client --dir "$TLS_DIR" \
    --ca "$TLS_DIR/ca.pem" --ca-key "$TLS_DIR/ca-key.pem" >/dev/null
  echo "created CA, server and client certificates in $TLS_DIR"
}

# secure_gossip_key: the gossip encryption key (each node persists its
# keyring in its data dir after the first start).
secure_gossip_key() {
  [[ -f "$TLS_DIR/gossip.key" ]] && return 0
  (umask 077 && "$STORECTL" keyring generate >"$TLS_DIR/gossip.key")
}

# secure_client_env: storectl in this script (and its children) uses the
# client certificate.
secure_client_env() {
  export STORE_CACERT="$TLS_DIR/ca.pem" STORE_CLIENT_CERT="$TLS_DIR/client.pem" STORE_CLIENT_KEY="$TLS_DIR/client-key.pem"
}

secure_setup() {
  secure_on || return 0
  secure_tls_files
  secure_gossip_key
  secure_client_env
}

secure_after_up() {
  secure_on || return 0
  echo "secure mode: export STORE_TOKEN=\$(cat $CLUSTER_DIR/bootstrap-token)"
  echo "secure mode: export STORE_CACERT=$STORE_CACERT STORE_CLIENT_CERT=$STORE_CLIENT_CERT STORE_CLIENT_KEY=$STORE_CLIENT_KEY"
}

# secure_stored_flags N: the stored flags of node N in secure mode.
secure_stored_flags() {
  secure_on || return 0
  printf '%s\n' --ca-file "$TLS_DIR/ca.pem" \
    --cert-file "$TLS_DIR/server-n$1.pem" --key-file "$TLS_DIR/server-n$1-key.pem" \
    --encrypt "$(<"$TLS_DIR/gossip.key")"
}
# ---------------------------------------------------------------------------

check_node() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3, got '${1:-}'"
}

check_bins() {
  [[ -x "$STORED" && -x "$STORECTL" ]] || die "$STORED or $STORECTL missing: run 'make build' first"
}

# pid_of prints the pid of node N if it is running.
pid_of() {
  local f pid
  f=$(pid_file "$1")
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

start_node() {
  local n=$1 join="" m dir
  if pid=$(pid_of "$n"); then
    echo "n$n is already running (pid $pid)"
    return 0
  fi
  for m in "${NODES[@]}"; do
    [[ "$m" == "$n" ]] || join+="${join:+,}$HOST:$(gossip_port "$m")"
  done
  dir=$(node_dir "$n")
  mkdir -p "$dir/data"
  local extra=()
  [[ "${ACL:-0}" == 1 ]] && extra+=(--acl-enabled)
  local secure_flags=()
  mapfile -t secure_flags < <(secure_stored_flags "$n")
  # setsid keeps Ctrl-C in the terminal away from background nodes; `run`
  # stops them itself.
  setsid "$STORED" \
    --node "n$n" \
    --data-dir "$dir/data" \
    --raft-addr "$HOST:$(raft_port "$n")" \
    --gossip-addr "$HOST:$(gossip_port "$n")" \
    --grpc-addr "$(grpc_addr "$n")" \
    --http-addr "$HOST:$(http_port "$n")" \
    --join "$join" \
    --bootstrap-expect 3 \
    --log-level "$LOG_LEVEL" \
    ${extra[@]+"${extra[@]}"} \
    "${secure_flags[@]}" \
    >>"$(log_file "$n")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$n")"
  echo "n$n started (pid $!, gRPC $(grpc_addr "$n"), HTTP $HOST:$(http_port "$n"), log $(log_file "$n"))"
}

# wait_exit PID SECONDS: wait for a process to exit; 1 if it is still alive.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  return 0
}

stop_node() {
  local n=$1 pid
  if ! pid=$(pid_of "$n"); then
    echo "n$n is not running"
    rm -f "$(pid_file "$n")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_exit "$pid" 30; then
    echo "n$n did not stop within 30s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 10 || true
  fi
  rm -f "$(pid_file "$n")"
  echo "n$n stopped"
}

kill_node() {
  local n=$1 pid
  if ! pid=$(pid_of "$n"); then
    echo "n$n is not running"
    rm -f "$(pid_file "$n")"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_exit "$pid" 10 || die "n$n (pid $pid) survived SIGKILL"
  rm -f "$(pid_file "$n")"
  echo "n$n killed"
}

# json_field KEY: print the value of "KEY" in the JSON on stdin (strings and
# scalars only; enough for storectl's flat outputs).
json_field() {
  sed -n "s/^[[:space:]]*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n 1
}

# ready EXPECTED: true when every running node knows the same leader and the
# leader's Raft configuration has EXPECTED voters.
ready() {
  local expected=$1 n leader="" l st peers voters
  for n in "${NODES[@]}"; do
    pid_of "$n" >/dev/null || continue
    st=$("$STORECTL" --addr "$(grpc_addr "$n")" status --json --timeout 2s 2>/dev/null) || return 1
    l=$(json_field leader <<<"$st")
    [[ -n "$l" ]] || return 1
    if [[ -z "$leader" ]]; then leader=$l; elif [[ "$leader" != "$l" ]]; then return 1; fi
  done
  [[ -n "$leader" ]] || return 1
  peers=$("$STORECTL" --addr "$(all_grpc_addrs)" peers --json --timeout 2s 2>/dev/null) || return 1
  voters=$(grep -c '"voter": true' <<<"$peers" || true)
  [[ "$voters" -eq "$expected" ]]
}

# wait_ready EXPECTED: poll ready until UP_TIMEOUT.
wait_ready() {
  local expected=$1 deadline=$((SECONDS + UP_TIMEOUT))
  until ready "$expected"; do
    if ((SECONDS >= deadline)); then
      echo "cluster.sh: no leader with $expected voters after ${UP_TIMEOUT}s; logs are in $CLUSTER_DIR/n*/stored.log" >&2
      show_status >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

running_count() {
  local n c=0
  for n in "${NODES[@]}"; do pid_of "$n" >/dev/null && c=$((c + 1)); done
  echo "$c"
}

# ---- ACLs (ACL=1; docs/acl.md) ----

# acl_token_file is where the management SecretID is kept (mode 0600).
acl_token_file() { echo "$CLUSTER_DIR/bootstrap-token"; }

# acl_load_token exports STORE_TOKEN from the token file when ACL=1, so
# every storectl call of this script carries it.
acl_load_token() {
  [[ "${ACL:-0}" == 1 && -s "$(acl_token_file)" ]] || return 0
  STORE_TOKEN=$(<"$(acl_token_file)")
  export STORE_TOKEN
}

# acl_bootstrap (ACL=1): bootstrap once a leader exists, retrying until
# UP_TIMEOUT, and keep the SecretID; a cluster bootstrapped before keeps
# its token file.
acl_bootstrap() {
  [[ "${ACL:-0}" == 1 ]] || return 0
  local f out deadline=$((SECONDS + UP_TIMEOUT))
  f=$(acl_token_file)
  if [[ -s "$f" ]]; then acl_load_token; return 0; fi
  until out=$("$STORECTL" --addr "$(all_grpc_addrs)" acl bootstrap --timeout 5s 2>&1); do
    if grep -q 'no longer allowed' <<<"$out"; then
      die "ACLs are bootstrapped but $f is missing; reset as docs/acl.md (Bootstrap and reset) says"
    fi
    ((SECONDS < deadline)) || die "ACL bootstrap failed: $out"
    sleep 0.5
  done
  (umask 077 && sed -n 's/^SecretID: *//p' <<<"$out" >"$f")
  [[ -s "$f" ]] || die "ACL bootstrap printed no SecretID"
  acl_load_token
  echo "ACLs bootstrapped; the management token is in $f"
}

cmd_up() {
  check_bins
  secure_setup
  local n
  for n in "${NODES[@]}"; do start_node "$n"; done
  acl_bootstrap
  wait_ready 3
  secure_after_up
  echo "cluster is up: leader elected, 3 voters; STORE_ADDR=$(all_grpc_addrs); HTTP API and UI: http://$HOST:$(http_port 1)/"
}

cmd_down() {
  local n pids=()
  # Stop all nodes at once; each leaves gracefully.
  for n in "${NODES[@]}"; do
    if pid=$(pid_of "$n"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$n:$pid")
    fi
  done
  for np in "${pids[@]}"; do
    n=${np%%:*}
    pid=${np#*:}
    if ! wait_exit "$pid" 30; then
      echo "n$n did not stop within 30s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_exit "$pid" 10 || true
    fi
    echo "n$n stopped"
  done
  for n in "${NODES[@]}"; do rm -f "$(pid_file "$n")"; done
}

cmd_start() {
  check_bins
  check_node "${1:-}"
  secure_setup
  start_node "$1"
  acl_load_token
  wait_ready "$(running_count)"
}

show_status() {
  local n pid
  for n in "${NODES[@]}"; do
    if pid=$(pid_of "$n"); then
      echo "== n$n: running (pid $pid), gRPC $(grpc_addr "$n")"
      "$STORECTL" --addr "$(grpc_addr "$n")" status --timeout 2s 2>&1 | sed 's/^/   /' || true
    else
      echo "== n$n: not running"
    fi
  done
  echo "== peers"
  "$STORECTL" --addr "$(all_grpc_addrs)" peers --timeout 2s 2>&1 | sed 's/^/   /' || true
}

cmd_run() {
  check_bins
  local n logs=()
  TAIL_PID=""
  trap 'echo; echo "stopping the cluster..."; [[ -n "$TAIL_PID" ]] && kill "$TAIL_PID" 2>/dev/null; cmd_down; exit 0' INT TERM
  secure_setup
  for n in "${NODES[@]}"; do start_node "$n"; logs+=("$(log_file "$n")"); done
  acl_bootstrap
  wait_ready 3
  secure_after_up
  echo "cluster is up: leader elected, 3 voters. Try:"
  echo "  export STORE_ADDR=$(all_grpc_addrs)"
  echo "  export CONSUL_HTTP_ADDR=$HOST:$(http_port 1)   # the Consul-compatible HTTP API; the UI is at /ui/"
  echo "  bin/storectl put scripts/examples/01-proxy-defaults.hcl"
  echo "  bin/storectl peers"
  echo "Following the logs; Ctrl-C stops all three nodes."
  tail -n 0 -F "${logs[@]}" &
  TAIL_PID=$!
  wait
}

usage() {
  sed -n '2,41p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  start) cmd_start "${2:-}" ;;
  stop) check_node "${2:-}"; stop_node "$2" ;;
  kill) check_node "${2:-}"; kill_node "$2" ;;
  status) check_bins; secure_on && secure_client_env; acl_load_token; show_status ;;
  run) cmd_run ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
