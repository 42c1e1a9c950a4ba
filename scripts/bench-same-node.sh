#!/usr/bin/env bash
# Same-node resolves, one run: a proxy made here is resolved in another,
# already running process on this node, which touches every 4 KiB page, for
# 1 KB .. 1 GiB, bytes and NumPy payloads:
#   - the object server over UCX, read in place (zero copy: the consumer maps
#     the server's segments and pins the object) and copied (`ucx-copy`:
#     zero copy off, a one-sided get into a receive buffer);
#   - Ray's object store (pinned Ray 2.60.0; the consumer is an actor);
#   - the Python ProxyStore 1.1.0 (file connector on /dev/shm).
# Then the side-by-side table (benches/python/same_node.py).
#
#   bash scripts/bench-same-node.sh [--quick] [--sizes LIST] [--out DIR] [--hugetlb PAGES]
#
# --hugetlb PAGES sets the kernel's pool of 2 MiB huge pages
# (vm.nr_hugepages, root) to PAGES for the run and restores it at the end:
# the UCX server's System V segments then come from the pool (UCX asks with
# SHM_HUGETLB and falls back to 4 KiB pages when the pool is empty), and a
# reader touching 1 GiB walks 512 pages instead of 262,144. Without it the
# pool is left as the system has it (Debian's default: empty). Ray's object
# store is not configured for huge pages either way.
#
# Needs what scripts/setup.sh installs, and PyPI once (the Python
# reference's pinned virtual environment, see benches/python/README.md).
# The object server this script starts is stopped by its PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 sizes=1KB,1MB,100MB,1GiB out="" hugetlb=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --sizes) sizes=$2; shift ;;
    --out) out=$2; shift ;;
    --hugetlb) hugetlb=$2; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench-same-node: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$hugetlb" in *[!0-9]*) echo "bench-same-node: --hugetlb takes a number of pages" >&2; exit 2 ;; esac
out=${out:-results/same-node-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "== building (release)" >&2
cargo build --release --locked -q -p proxystore-bench -p ucx-connector --bins
target=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

pool=/proc/sys/vm/nr_hugepages
restore_pool() { :; }
if [ -n "$hugetlb" ]; then
  old_pool=$(cat "$pool")
  echo "$hugetlb" > "$pool" ||
    { echo "bench-same-node: cannot set $pool (needs root)" >&2; exit 1; }
  restore_pool() { echo "$old_pool" > "$pool" || true; }
  trap restore_pool EXIT
  echo "== huge-page pool: $(cat "$pool") pages of 2 MiB (asked $hugetlb; was $old_pool)" >&2
fi
hugepages() { grep -E '^(HugePages_Total|HugePages_Free)' /proc/meminfo | tr -s ' ' | paste -sd' '; }
echo "before the run: $(hugepages)" > "$out/hugepages.txt"

export UCX_TLS=${UCX_TLS:-shm,cma,self}
log=$out/ucx-server.log
"$target/release/proxystore-ucx-server" --listen 127.0.0.1:0 --memory-limit 6G > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; restore_pool' EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's/^LISTEN //p' "$log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "bench-same-node: the object server did not start (see $log)" >&2; exit 1; }
echo "== UCX object server pid $server on $addr (UCX_TLS=$UCX_TLS)" >&2

# shellcheck disable=SC2054  # the commas are inside one argument
common=(--payloads bytes,numpy --sizes "$sizes")
[ "$quick" = 1 ] && common+=(--quick) || common+=(--series-budget 2)

echo "== Ray and the Python ProxyStore (benches/python)" >&2
PROXYSTORE_PY_VENV=${PROXYSTORE_PY_VENV:-$target/python-ref-venv} \
  bash benches/python/run.sh --connectors ray,file "${common[@]}" --csv "$out/python.csv" \
  > "$out/python.md"

echo "== proxystore-bench store: zero copy (ucx) and copy (ucx-copy)" >&2
"$target/release/proxystore-bench" store --connectors ucx,ucx-copy "${common[@]}" \
  --ucx-server "$addr" --csv "$out/store.csv" > "$out/store.md"

echo "after the store benchmark, server running: $(hugepages)" >> "$out/hugepages.txt"
echo "== child_resolve medians (consumer process: resolve + touch every page)" >&2
python3 benches/python/same_node.py "$out/store.csv" "$out/python.csv" \
  --columns ucx,ucx-copy,ray,file | tee "$out/same-node.md"
echo "results in $out" >&2
