#!/usr/bin/env bash
# Small objects and cold starts on one node, in one run, next to the raw tools:
#
#   bash scripts/bench-small-cold.sh [--procs 20] [--seconds 2] [--connectors LIST] [--no-build]
#
# 1. start-up: `proxystore --version` and a C program that links
#    libproxystore.so and calls one function, each run --procs times (median);
# 2. cold: `proxystore-bench cold`: --procs fresh processes each resolving one
#    proxy (1 KB, 1 MB, 100 MB) per connector: whole process and resolve alone;
# 3. small: `proxystore-bench small`: one client, 1 KB gets and get_batch(64)
#    per second per connector; next to `redis-benchmark -c 1 -t get -d 1000`
#    against the same Redis, `ucx_perftest -t ucp_get -s 1024` over
#    shm,cma,self and the raw `fi_read` loop (1 KiB, shm).
#
# It starts what it needs (one `proxystore-server --transports ucx,ofi` over
# shared memory, a redis-server on a free port) and stops them on exit. Root
# is not needed. Output: Markdown tables on stdout, progress on stderr.
set -euo pipefail

PROCS=20
SECONDS_PER=2
CONNECTORS="file,redis,ucx,ucx-copy,ofi,ofi-copy"
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --procs) PROCS="$2"; shift 2 ;;
        --seconds) SECONDS_PER="$2"; shift 2 ;;
        --connectors) CONNECTORS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
T="$TARGET/release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-small-cold.XXXXXX")"
PIDS=()
log() { echo "bench-small-cold: $*" >&2; }
cleanup() {
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 20000))
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
    done
    echo "no free port" >&2; return 1
}

if [ "$BUILD" = 1 ]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release --locked -q -p proxystore-cli -p proxystore-bench \
        -p proxystore-server -p proxystore-capi --bins --lib --example side_by_side) >&2
fi
for b in proxystore proxystore-bench proxystore-server examples/side_by_side; do
    [ -x "$T/$b" ] || { log "$T/$b missing (run without --no-build)"; exit 1; }
done

# --- services ----------------------------------------------------------------
export FI_PROVIDER=shm
PORT=$(free_port)
"$T/proxystore-server" --listen "127.0.0.1:$PORT" --transports ucx,ofi --tls shm,cma,self \
    --provider shm --memory-limit 2G > "$WORK/server.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    grep -q '^LISTEN' "$WORK/server.log" && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
grep -q '^LISTEN' "$WORK/server.log" || { log "the object server did not start"; cat "$WORK/server.log" >&2; exit 1; }
CONN=(--ucx-server "127.0.0.1:$PORT" --ofi-server "127.0.0.1:$PORT" --redis "127.0.0.1:$REDIS_PORT"
      --file-dir "$WORK/files")

median_ms() { # command... : median wall time of PROCS runs, ms
    local t0 t1
    for _ in $(seq "$PROCS"); do
        t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done | sort -n | awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]/1000}'
}

# --- 1. start-up -----------------------------------------------------------------
log "start-up"
VERSION_MS=$(median_ms "$T/proxystore" --version)
C_MS="-"
if [ -f "$T/libproxystore.so" ] && command -v cc >/dev/null; then
    cat > "$WORK/start.c" <<'EOF'
#include <stdio.h>
const char *ps_version(void);
int main(void) { return ps_version()[0] == 0; }
EOF
    cc -O2 "$WORK/start.c" -o "$WORK/start" -L"$T" -lproxystore -Wl,-rpath,"$T"
    C_MS=$(median_ms "$WORK/start")
fi
NOTHING_MS=$(median_ms /bin/true)

# --- 2. cold ----------------------------------------------------------------------
log "cold: $CONNECTORS, $PROCS processes per cell"
COLD=$("$T/proxystore-bench" cold --connectors "$CONNECTORS" --procs "$PROCS" "${CONN[@]}")

# --- 3. small ------------------------------------------------------------------------
log "small: $CONNECTORS, ${SECONDS_PER} s per series"
SMALL=$("$T/proxystore-bench" small --connectors "$CONNECTORS" --seconds "$SECONDS_PER" "${CONN[@]}")
log "redis-benchmark -c 1"
REDIS_RPS=$(redis-benchmark -p "$REDIS_PORT" -c 1 -n 100000 -d 1000 -t get -q 2>/dev/null |
    tr '\r' '\n' | sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
log "ucx_perftest ucp_get 1 KiB"
UPORT=$(free_port)
UCX_TLS=shm,cma,self ucx_perftest -p "$UPORT" > "$WORK/perftest-server.log" 2>&1 &
PIDS+=($!)
sleep 1
PT_LAT=$(UCX_TLS=shm,cma,self ucx_perftest 127.0.0.1 -p "$UPORT" -t ucp_get -s 1024 -n 100000 2>&1 |
    awk '/^Final:/ {print $3}')
log "raw fi_read 1 KiB"
FI_US=$("$ROOT/target/release/examples/side_by_side" --provider shm --tls shm,cma,self --sizes 1K \
    --iters 20000 2>/dev/null | awk -F, '/^CSV,/ {printf "%.2f", $3 / 1000}')

echo "### Start-up (median of $PROCS)"
echo
echo "| \`/bin/true\` | \`proxystore --version\` | C program linking libproxystore.so |"
echo "|---:|---:|---:|"
echo "| ${NOTHING_MS} ms | ${VERSION_MS} ms | ${C_MS} ms |"
echo
echo "### A fresh process resolving one proxy (\`proxystore-bench cold\`)"
echo
echo "$COLD"
echo "### One client, small objects (\`proxystore-bench small\`)"
echo
echo "$SMALL" | grep -v '^SMALL,'
echo "The raw tools in the same run: \`redis-benchmark -c 1 -t get -d 1000\` ${REDIS_RPS:-?} requests/s;"
echo "\`ucx_perftest -t ucp_get -s 1024\` (shm,cma,self) ${PT_LAT:-?} us per get (p50, pipelined);"
echo "raw \`fi_read\` 1 KiB (shm) ${FI_US:-?} us per read (median, one at a time)."
REDIS_OURS=$(echo "$SMALL" | awk -F, '/^SMALL,redis,/ {print $3}')
if [ -n "${REDIS_OURS:-}" ] && [ -n "${REDIS_RPS:-}" ]; then
    echo "Redis connector / redis-benchmark: $(awk -v a="$REDIS_OURS" -v b="$REDIS_RPS" 'BEGIN {printf "%.0f%%", 100 * a / b}')."
fi
