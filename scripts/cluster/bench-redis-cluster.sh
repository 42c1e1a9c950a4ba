#!/usr/bin/env bash
# One redis-server against a Redis Cluster of 3 masters + 3 replicas, with
# every server on a host of its own: the virtual cluster's nodes, each with a
# CPU budget of its own (`cluster.sh cpu`) and a link of its own. The client,
# `cargo bench -p redis-connector --bench cluster` (64 KB and 1 KB `get` and
# `get_batch(16)` from 8 threads, then single large puts and gets), runs on
# `head`, first against the one server, then against the cluster.
#
#   bash scripts/cluster/bench-redis-cluster.sh [--cpu 0.3] [--rate 10gbit]
#        [--head-rate 100gbit] [--reps 1] [--seconds 3] [--threads 8]
#        [--out DIR]
#
# Why on the virtual cluster: on this machine's loopback one redis-server
# thread and the client's threads already fill the 2 vCPUs, so 3 masters on
# the same 2 vCPUs cannot show what they give on 3 hosts. Here a server
# node's --cpu share (default 0.3 of a CPU per node, `off` for none) stands
# for its own core and --rate (tc tbf, both directions) for its own NIC; the
# client's node, head, gets --cpu nothing and --head-rate, so that what binds
# is the servers, as when one client reads from servers on other hosts.
# node1..node3 are the masters, node4..node6 their replicas, node7 the one
# redis-server; every node has the same --cpu and --rate.
#
# Root; Debian 12 with redis-server, redis-tools and what scripts/cluster/
# needs. A cluster that is already up is left alone: the script then stops.
# Takes its cluster down at the end, also on failure or Ctrl-C. Writes the
# bench's table for each repetition (run<i>.md) and the parameters, versions
# and load (params.txt) to --out (default results/redis-cluster-nodes-<time>),
# and prints the tables.
set -euo pipefail

CPU=0.3
RATE=10gbit
HEAD_RATE=100gbit
REPS=1
SECONDS_PER_SERIES=3
THREADS=8
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) CPU="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --head-rate) HEAD_RATE="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_SERIES="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "--reps $REPS: give a whole number >= 1" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/cluster/bench-lib.sh
. "$ROOT/scripts/cluster/bench-lib.sh"
OUT="${OUT:-$ROOT/results/redis-cluster-nodes-$(date +%Y%m%d-%H%M%S)}"
log() { echo "bench-redis-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (namespaces, tc, cgroups)"
{ command -v redis-server && command -v redis-cli; } >/dev/null ||
    die "needs redis-server and redis-cli (apt-get install redis-server redis-tools)"
need_no_cluster
mkdir -p "$OUT"

# The bench's executable, built if it is not up to date (cargo names it in
# its JSON messages; its progress and errors go to stderr).
log "building the bench (release)"
BENCH=$(cd "$ROOT" && cargo bench --locked -p redis-connector --bench cluster --no-run \
        --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cluster" and m.get("executable"):
        print(m["executable"])')
[ -x "$BENCH" ] || die "cargo named no bench executable"

take_down_on_exit
log "cluster: head + 7 nodes, links $RATE (head $HEAD_RATE), CPU $CPU per server node"
bash "$CLUSTER" up 7 --rate "$RATE" >/dev/null
bash "$CLUSTER" rate head "$HEAD_RATE" >/dev/null
if [ "$CPU" != off ]; then
    for i in 1 2 3 4 5 6 7; do bash "$CLUSTER" cpu "node$i" "$CPU" >/dev/null; done
fi

# A redis-server on node i, port 6379 on the node's address (its private /tmp).
PORT=6379
start_server() { # i, extra options...
    local i=$1 a; shift
    a=$(bash "$CLUSTER" addr "node$i")
    bash "$CLUSTER" exec "node$i" bash -c 'mkdir -p /tmp/redis && exec "$@"' _ \
        redis-server --port "$PORT" --bind "$a" --protected-mode no --save "" --appendonly no \
        --dir /tmp/redis --logfile /tmp/redis/log --daemonize yes "$@"
    for _ in $(seq 100); do
        bash "$CLUSTER" exec head redis-cli -h "$a" -p "$PORT" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "redis-server on node$i did not answer: $(bash "$CLUSTER" exec "node$i" tail -5 /tmp/redis/log)"
}
nodes=()
for i in 1 2 3 4 5 6; do
    start_server "$i" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000 --repl-diskless-sync-delay 0
    nodes+=("$(bash "$CLUSTER" addr "node$i"):$PORT")
done
start_server 7
single="$(bash "$CLUSTER" addr node7):$PORT"
# The first three given become the masters, each later one a replica of one of them.
bash "$CLUSTER" exec head redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 \
    --cluster-yes > "$OUT/cluster-create.txt" 2>&1 || die "cluster create: $(tail -5 "$OUT/cluster-create.txt")"
# Ready: every slot covered, no error, and three replicas known as such.
ok=""
for _ in $(seq 150); do
    c=$(bash "$CLUSTER" exec head redis-cli --cluster check "${nodes[0]}" 2>/dev/null || true)
    bash "$CLUSTER" exec head redis-cli -h "${nodes[0]%:*}" -p "$PORT" cluster nodes \
        | awk '{print $2, $3}' > "$OUT/cluster-nodes.txt"
    if grep -q '\[OK\] All 16384 slots covered' <<< "$c" && ! grep -q '\[ERR\]' <<< "$c" &&
        [ "$(grep -c slave "$OUT/cluster-nodes.txt")" = 3 ]; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || die "the cluster did not come up: $(tail -5 <<< "$c"; cat "$OUT/cluster-nodes.txt")"
for m in "${nodes[@]:0:3}"; do
    grep -q "^$m@.*master" "$OUT/cluster-nodes.txt" || die "$m is not a master: $(cat "$OUT/cluster-nodes.txt")"
done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "redis-server: $(redis-server --version)"
    if [ "$CPU" = off ]; then share="CPU not capped"; else share="CPU share $CPU each"; fi
    echo "server nodes: $share, links $RATE; head (the client): CPU not capped, link $HEAD_RATE"
    echo "one server: $single; cluster masters: ${nodes[*]:0:3}; replicas: ${nodes[*]:3:3}"
    echo "bench: $THREADS threads, $SECONDS_PER_SERIES s per series"
    bash "$CLUSTER" status
} > "$OUT/params.txt"
for r in $(seq "$REPS"); do
    log "run $r of $REPS"
    echo "load before run $r: $(uptime)" >> "$OUT/params.txt"
    bash "$CLUSTER" exec head env PROXYSTORE_BENCH_REDIS="$single" \
        PROXYSTORE_BENCH_REDIS_CLUSTER="$(IFS=,; echo "${nodes[*]:0:3}")" \
        PROXYSTORE_BENCH_SECONDS="$SECONDS_PER_SERIES" PROXYSTORE_BENCH_THREADS="$THREADS" \
        "$BENCH" > "$OUT/run$r.md"
    echo "load after run $r: $(uptime)" >> "$OUT/params.txt"
    echo "### run $r"; cat "$OUT/run$r.md"
done
log "results in $OUT"
