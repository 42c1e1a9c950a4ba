#!/usr/bin/env bash
# The UCX connector's one-sided get next to `ucx_perftest -t ucp_get`, on the
# same machine and transports (UCX_TLS=shm,cma,self for both), in one run.
#
#   bash scripts/ucx-vs-perftest.sh [--rounds N] [--sizes 1K,64K,1M,64M] [--tls LIST]
#
# Builds what it needs (cargo build --release), then for each round runs, for
# every size, one ucx_perftest server+client pair on loopback, and then the
# connector's gets (examples/ucx_bench) against a proxystore-ucx-server that
# this script starts on loopback. Rounds interleave the two, so that a noisy
# machine hits both alike; the table shows the median over rounds of each
# side's median get. Every process it starts is stopped by PID on exit,
# Ctrl-C or error. Prints one Markdown table on stdout (per-round numbers go
# to stderr).
#
# perftest's latency is its 50th percentile per get (ucp_get posts the next
# get without waiting for the previous one: a pipelined rate, not a round
# trip). The connector's is a complete `get` (one-sided data get, header and
# trailer check, header re-read, liveness check, `Bytes` handed out).
# Bandwidth is size / median latency (MB = 10^6 bytes) for both.
#
# Which UCX: the system's (Debian's), or with UCX_DIR=<prefix> that UCX for
# both sides (its bin/ucx_perftest, and the connector built against it into
# target/ucx-dir unless CARGO_TARGET_DIR is set), e.g. a current UCX from PyPI:
#   UCX_DIR=$(bash scripts/ucx-wheel.sh) bash scripts/ucx-vs-perftest.sh
set -euo pipefail

ROUNDS=3
SIZES="1K,64K,1M,64M"
TLS="shm,cma,self"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --sizes) SIZES="$2"; shift 2 ;;
        --tls) TLS="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${UCX_DIR:-}" ]; then
    # That UCX's tools, loaded from its lib/ (the connector's binaries carry
    # a run path to it); a target directory of its own, so that switching
    # UCX does not rebuild the main one.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/ucx-dir}"
    export UCX_WARN_UNUSED_ENV_VARS=n # UCX_DIR is no UCX option
    ucx_tool() { LD_LIBRARY_PATH="$UCX_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$UCX_DIR/bin/$1" "${@:2}"; }
    [ -x "$UCX_DIR/bin/ucx_perftest" ] || {
        echo "UCX_DIR=$UCX_DIR has no bin/ucx_perftest" >&2
        exit 1
    }
else
    ucx_tool() { "$@"; }
    command -v ucx_perftest >/dev/null || {
        echo "ucx_perftest not found: apt-get install ucx-utils" >&2
        exit 1
    }
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ucx-vs-perftest.XXXXXX")"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Forget a PID we reaped ourselves.
forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# Run a command in the background, tracked (so the traps can stop it at
# once: bash runs traps only between foreground commands), and wait for it.
run_tracked() {
    local pid rc=0
    "$@" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget "$pid"
    return "$rc"
}

bytes_of() {
    local s="$1"
    case "$s" in
        *K) echo $(( ${s%K} << 10 )) ;;
        *M) echo $(( ${s%M} << 20 )) ;;
        *G) echo $(( ${s%G} << 30 )) ;;
        *) echo "$s" ;;
    esac
}

free_port() {
    local p
    for _ in $(seq 100); do
        p=$(( 20000 + RANDOM % 20000 ))
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return
        fi
    done
    echo "no free port" >&2
    return 1
}

echo "== building (release)" >&2
run_tracked cargo build --manifest-path "$ROOT/Cargo.toml" --release -q -p ucx-connector \
    --bins --example ucx_bench
SERVER_BIN="$TARGET/release/proxystore-ucx-server"
BENCH_BIN="$TARGET/release/examples/ucx_bench"

export UCX_TLS="$TLS"

if [ -n "${UCX_DIR:-}" ]; then
    perftest_cmd=(env "LD_LIBRARY_PATH=$UCX_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$UCX_DIR/bin/ucx_perftest")
else
    perftest_cmd=(ucx_perftest)
fi

# One ucx_perftest server+client pair: sets PERFTEST_US (median us per get).
# Runs in this shell (not in a $(...) subshell), so PIDS tracks its server.
perftest() {
    local size="$1" iters="$2" warmup="$3" port out spid line
    port="$(free_port)"
    out="$WORK/perftest-$size.txt"
    "${perftest_cmd[@]}" -p "$port" >"$WORK/perftest-server.log" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    # The server is ready once it listens.
    for _ in $(seq 100); do
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    if ! run_tracked timeout 300 "${perftest_cmd[@]}" 127.0.0.1 -p "$port" -t ucp_get \
        -s "$size" -n "$iters" -w "$warmup" -f >"$out" 2>&1; then
        echo "ucx_perftest failed:" >&2
        cat "$out" "$WORK/perftest-server.log" >&2
        return 1
    fi
    # The server exits after its test; do not leave it behind if it did not.
    for _ in $(seq 50); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    forget "$spid"
    # Final line (with -f: numbers only, else after "Final:"): iterations,
    # latency 50%ile, average, overall, bandwidth average, overall, rates.
    line="$(grep -E '^ *(Final:)? *[0-9]+ +[0-9.]+ ' "$out" | tail -1)"
    [ -n "$line" ] || { echo "no result from ucx_perftest:" >&2; cat "$out" >&2; return 1; }
    PERFTEST_US="$(echo "$line" | awk '{ if ($1 == "Final:") print $3; else print $2 }')"
}

iters_for() {
    local b="$1"
    if [ "$b" -ge $((16 << 20)) ]; then echo "50 5"
    elif [ "$b" -ge $((1 << 20)) ]; then echo "2000 100"
    else echo "100000 1000"; fi
}

# The object server, started once, on loopback, on any free port.
echo "== starting proxystore-ucx-server (UCX_TLS=$TLS)" >&2
mkfifo "$WORK/server.out"
"$SERVER_BIN" --listen 127.0.0.1:0 --tls "$TLS" --memory-limit 2G \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
exec 3<"$WORK/server.out"
ADDR=""
if read -r -t 60 line <&3; then
    ADDR="${line#LISTEN }"
fi
if [ -z "$ADDR" ] || [ "$ADDR" = "$line" ]; then
    echo "object server did not start:" >&2
    cat "$WORK/server.err" >&2
    exit 1
fi
# Keep draining its stdout in the background (nothing more is expected).
cat <&3 >/dev/null &
PIDS+=("$!")
echo "== object server $ADDR (pid $SERVER_PID)" >&2

IFS=',' read -r -a SIZE_LIST <<<"$SIZES"
: >"$WORK/results.txt"
for round in $(seq "$ROUNDS"); do
    for s in "${SIZE_LIST[@]}"; do
        b="$(bytes_of "$s")"
        read -r n w <<<"$(iters_for "$b")"
        perftest "$b" "$n" "$w"
        echo "perftest $b $PERFTEST_US" >>"$WORK/results.txt"
        echo "round $round: perftest ucp_get $s: median ${PERFTEST_US} us" >&2
    done
    run_tracked timeout 600 "$BENCH_BIN" --server "$ADDR" --tls "$TLS" --sizes "$SIZES" \
        --iters 2000 --big-iters 50 --csv 1 >"$WORK/bench.txt" 2>"$WORK/bench.err" || {
        echo "ucx_bench failed:" >&2
        cat "$WORK/bench.txt" "$WORK/bench.err" >&2
        exit 1
    }
    grep '^CSV,' "$WORK/bench.txt" | while IFS=',' read -r _ b _put med _best; do
        lat="$(awk -v ns="$med" 'BEGIN { printf "%.3f", ns / 1000 }')"
        echo "connector $b $lat" >>"$WORK/results.txt"
        echo "round $round: connector get $b B: median ${lat} us" >&2
    done
done

median() { # kind bytes -> median latency (us) over rounds
    awk -v k="$1" -v b="$2" '$1 == k && $2 == b { print $3 }' "$WORK/results.txt" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fmt_lat() {
    awk -v us="$1" 'BEGIN {
        if (us >= 1000) printf "%.2f ms", us / 1000;
        else if (us >= 10) printf "%.1f us", us;
        else printf "%.2f us", us }'
}

fmt_bw() {
    awk -v b="$1" -v us="$2" 'BEGIN {
        mbs = b / us;  # bytes per us = MB/s
        if (mbs >= 1000) printf "%.2f GB/s", mbs / 1000; else printf "%.0f MB/s", mbs }'
}

echo
echo "UCX_TLS=$TLS, $ROUNDS rounds (perftest and connector interleaved), median over rounds of each run's median get; UCX $(ucx_tool ucx_info -v | sed -n 's/^# Version //p; s/^# Library version: //p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| size | ucx_perftest ucp_get latency / bandwidth | connector get latency / bandwidth | connector / perftest bandwidth |"
echo "|---:|---:|---:|---:|"
for s in "${SIZE_LIST[@]}"; do
    b="$(bytes_of "$s")"
    p="$(median perftest "$b")"
    c="$(median connector "$b")"
    ratio="$(awk -v p="$p" -v c="$c" 'BEGIN { printf "%.0f%%", 100 * p / c }')"
    echo "| $s | $(fmt_lat "$p") / $(fmt_bw "$b" "$p") | $(fmt_lat "$c") / $(fmt_bw "$b" "$c") | $ratio |"
done
