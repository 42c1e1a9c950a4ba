#!/usr/bin/env bash
# The store benchmark (proxystore-bench store) on one redis-server and on a
# Redis Cluster of 3 masters + 3 replicas, in one run, all on loopback.
# Starts the servers in a temporary directory (Debian's redis-server and
# redis-tools) and removes every process and file on exit, also on failure.
#
#   bash scripts/bench-redis-cluster.sh [OUT_DIR] [-- extra proxystore-bench store options]
#
# Builds proxystore-bench (release) unless PROXYSTORE_BENCH_BIN names it.
# REPLICAS=0 makes a cluster of 3 masters without replicas (to see what
# replication costs the writes).
# (scripts/cluster/bench-redis-cluster.sh puts every server on a host of its
# own on the virtual cluster, for the throughput a cluster adds.)
# Writes OUT_DIR/store.csv (default results/redis-cluster-<date>) and the
# load average before and after (uptime) to OUT_DIR/load.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/redis-cluster-$(date -u +%Y-%m-%d)}
shift || true
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
bin=${PROXYSTORE_BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -p proxystore-bench
  bin=${CARGO_TARGET_DIR:-target}/release/proxystore-bench
fi
dir=$(mktemp -d /tmp/proxystore-redis-cluster-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# A port p with p and its cluster bus port p+10000 free.
free_port() {
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null &&
       ! (exec 3<>/dev/tcp/127.0.0.1/$((p + 10000))) 2>/dev/null; then
      echo "$p"; return
    fi
  done
}
start() { # port, extra options...
  local port=$1; shift
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir/$port" --logfile "$dir/$port/log" "$@" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on $port did not start: $(tail -5 "$dir/$port/log")" >&2; exit 1
}
single=$(free_port); start "$single"
replicas=${REPLICAS:-1}
nodes=()
for _ in $(seq $((3 * (replicas + 1)))); do
  p=$(free_port)
  start "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000 --repl-diskless-sync-delay 0
  nodes+=("127.0.0.1:$p")
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >/dev/null
for _ in $(seq 150); do
  redis-cli --cluster check "${nodes[0]}" 2>/dev/null | grep -q '\[OK\] All 16384 slots covered' &&
    ! redis-cli --cluster check "${nodes[0]}" | grep -q '\[ERR\]' && break
  sleep 0.2
done
uptime | tee "$out/load.txt"
"$bin" store --connectors redis,redis-cluster --payloads bytes \
  --redis "127.0.0.1:$single" --redis-cluster "$(IFS=,; echo "${nodes[*]}")" \
  --csv "$out/store.csv" "$@"
uptime | tee -a "$out/load.txt"
