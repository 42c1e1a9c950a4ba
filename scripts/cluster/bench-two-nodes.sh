#!/usr/bin/env bash
# Two nodes of the virtual cluster, one benchmark run: the UCX and libfabric
# connectors' gets from a server on node1 by a reader on node2, next to each
# fabric's own tool across the same link (ucx_perftest -t ucp_get over UCX's
# tcp, the raw fi_read loop over tcp;ofi_rxm), and the 1 GiB resolve next to
# MPI send/recv and MPI_Get between the same two nodes (an sbatch -N 2 job).
#
#   bash scripts/cluster/bench-two-nodes.sh [--rate 2gbit] [--rounds 3] [--sizes 1MiB,64MiB]
#        [--iters 10] [--mpi-sizes 64MiB,1GiB] [--reps 3] [--no-build] [--out DIR]
#
# Root; Debian 12 with what scripts/cluster/ needs (cluster.sh and slurm.sh
# install the rest). Brings a 2-node cluster up at the stated link rate (a
# `tbf` limit on each node's link, both directions), runs, takes it down, also
# on failure or Ctrl-C. A cluster that is already up is left alone: the
# script then stops (two clusters cannot share the addresses).
#
# What runs, in this order, in one invocation:
# 1. the link: one TCP stream node1 -> node2 for 2 s (a Python socket pair),
#    the goodput the kernel's TCP gets through the shaped link;
# 2. --rounds rounds, each: for every size, `ucx_perftest -t ucp_get`
#    (UCX_TLS=tcp, server on node1, client on node2, --iters gets); then
#    `examples/side_by_side` on node2 against one `proxystore-server
#    --transports ucx,ofi` and one raw fi_read target on node1: raw fi_read,
#    the ofi connector's get and the UCX connector's one-sided get,
#    interleaved; then the same with the UCX connector's data path left to it
#    (`auto`: over UCX's tcp transport, whose RMA is emulated, it takes the
#    stream path). Every get is one at a time, zero copy off (no mapping is
#    possible across nodes anyway), each `Bytes` dropped before the next;
# 3. `sbatch -W -N 2 --ntasks-per-node=1 scripts/slurm/bench.sbatch`,
#    PATTERN=pair, CONNECTORS=ucx+ofi, SIZES=--mpi-sizes: MPI send/recv,
#    MPI_Get and both connectors' resolve + read of every byte, rank 0 on
#    node1 and rank 1 on node2.
#
# Prints Markdown tables on stdout (progress on stderr) and keeps the raw
# outputs in --out (default: results/two-nodes-<date> in the repository).
# Bandwidths are MB/s = 10^6 bytes per second of the median get (perftest's
# p50 latency for ucx_perftest, whose MB are MiB: converted).
set -euo pipefail

RATE=2gbit
ROUNDS=3
SIZES=1MiB,64MiB
ITERS=10
MPI_SIZES=64MiB,1GiB
REPS=3
BUILD=1
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --sizes) SIZES="$2"; shift 2 ;;
        --iters) ITERS="$2"; shift 2 ;;
        --mpi-sizes) MPI_SIZES="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CLUSTER="$ROOT/scripts/cluster/cluster.sh"
SLURM="$ROOT/scripts/cluster/slurm.sh"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
T="$TARGET/release"
OUT="${OUT:-$ROOT/results/two-nodes-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "bench-two-nodes: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (Linux namespaces)"
command -v ucx_perftest >/dev/null || die "ucx_perftest not found: apt-get install ucx-utils"
if [ -e "${PSC_STATE:-/run/proxystore-cluster}/nodes" ]; then
    die "a virtual cluster is already up (cluster.sh status); take it down first"
fi

bytes_of() { # 64MiB -> 67108864 (K/M/G and KiB/MiB/GiB: powers of 1024)
    python3 -c 'import re,sys
m=re.fullmatch(r"(\d+)\s*([KMG]?)(i?B)?",sys.argv[1].strip(),re.I)
if not m: sys.exit("bad size "+sys.argv[1])
print(int(m.group(1))*1024**" KMG".index((m.group(2) or " ").upper()))' "$1"
}
MAX=0
for s in ${SIZES//,/ }; do b=$(bytes_of "$s"); [ "$b" -gt "$MAX" ] && MAX=$b; done

if [ "$BUILD" = 1 ]; then
    log "building (cargo build --release)"
    (cd "$ROOT" && cargo build --release --locked -p proxystore-server --bins --examples \
        -p proxystore-bench -p ucx-connector -p ofi-connector --bins) >&2
fi
for b in proxystore-server examples/side_by_side proxystore-bench proxystore-ucx-server proxystore-ofi-server; do
    [ -x "$T/$b" ] || die "$T/$b missing (run without --no-build)"
done

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "${W:-}" ] && [ -d "$W" ] && cp -r "$W"/. "$OUT"/ 2>/dev/null
    log "taking the cluster down"
    bash "$CLUSTER" down >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cluster up: 2 nodes, links $RATE"
bash "$CLUSTER" up 2 --rate "$RATE" >&2
bash "$SLURM" up >&2
N1=$(bash "$CLUSTER" addr node1)
# What the nodes write goes to the shared directory (a node's /tmp is its
# own), and is copied to $OUT.
SHARED=$(bash "$CLUSTER" shared)
W="$SHARED/bench-two-nodes"
mkdir -p "$W"
on() { bash "$CLUSTER" exec "$@"; }

# --- 1. the link ----------------------------------------------------------------
log "TCP goodput node1 -> node2"
on node2 python3 - "$N1" > "$OUT/link.txt" <<'EOF' &
import socket, sys, time
for _ in range(100):  # until node1 listens
    try:
        s = socket.create_connection((sys.argv[1], 7799)); break
    except ConnectionRefusedError:
        time.sleep(0.1)
else:
    sys.exit("node1 never listened")
buf = bytearray(1 << 20); n = 0; t0 = time.perf_counter()
while True:
    k = s.recv_into(buf)
    if not k: break
    n += k
print(f"{n / (time.perf_counter() - t0) / 1e6:.0f}")
EOF
GOOD_PID=$!
on node1 python3 - <<'EOF'
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7799)); l.listen(1); l.settimeout(30)
c, _ = l.accept(); buf = bytes(1 << 20); end = time.perf_counter() + 2
while time.perf_counter() < end: c.sendall(buf)
c.close()
EOF
wait "$GOOD_PID"
GOODPUT=$(cat "$OUT/link.txt")
log "goodput ${GOODPUT} MB/s"

# --- 2. gets vs the fabric tools ------------------------------------------------
export PROXYSTORE_SERVER_SECRET="${PROXYSTORE_SERVER_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
PROVIDER='tcp;ofi_rxm'
on node1 bash -c "'$T/proxystore-server' --listen '$N1:7700' --transports ucx,ofi --tls tcp \
    --provider '$PROVIDER' --memory-limit 4G >'$W/server.log' 2>&1 &
    echo \$! >>'$W/node1.pids'
    '$T/examples/side_by_side' --target $MAX --provider '$PROVIDER' --hold 1 >'$W/raw-target.line' 2>'$W/raw-target.log' &
    echo \$! >>'$W/node1.pids'
    for i in \$(seq 100); do grep -q '^LISTEN' '$W/server.log' && grep -q '^RAW' '$W/raw-target.line' && exit 0; sleep 0.1; done
    echo 'server or raw target did not start' >&2; exit 1"
RAW=$(grep '^RAW' "$W/raw-target.line")

perftest() { # size in bytes -> MB/s from perftest's p50
    local size=$1 port=$((13400 + RANDOM % 500)) line
    on node1 env UCX_TLS=tcp ucx_perftest -p "$port" >>"$W/perftest-server.log" 2>&1 &
    local srv=$!
    sleep 1
    line=$(on node2 env UCX_TLS=tcp ucx_perftest "$N1" -p "$port" -t ucp_get -s "$size" -n "$ITERS" 2>&1 |
        tee -a "$OUT/perftest.log" | grep '^Final:') || { kill "$srv" 2>/dev/null; return 1; }
    wait "$srv" 2>/dev/null || true
    # Final: iters p50 avg overall bw_avg bw_overall ... (latency in us)
    awk -v s="$size" '{ printf "%.0f\n", s / $3 }' <<<"$line"
}

echo "round,size,tool,mb_per_s" > "$OUT/gets.csv"
for r in $(seq "$ROUNDS"); do
    for s in ${SIZES//,/ }; do
        b=$(bytes_of "$s")
        mbs=$(perftest "$b") || die "ucx_perftest failed (see $OUT/perftest.log)"
        echo "$r,$b,ucx_perftest,$mbs" >> "$OUT/gets.csv"
        log "round $r $s: ucx_perftest ucp_get $mbs MB/s"
    done
    for path in rma auto; do
        on node2 "$T/examples/side_by_side" --server "$N1:7700" --raw-target "$RAW" \
            --provider "$PROVIDER" --tls tcp --sizes "$SIZES" --iters "$ITERS" --ucx-path "$path" \
            > "$OUT/side-by-side-$r-$path.txt" 2>&1 ||
            die "side_by_side failed (see $OUT/side-by-side-$r-$path.txt)"
        # CSV,len,raw ns,ofi ns,ucx ns
        grep '^CSV,' "$OUT/side-by-side-$r-$path.txt" | while IFS=, read -r _ len raw ofi ucx; do
            if [ "$path" = rma ]; then
                echo "$r,$len,raw fi_read,$((len * 1000 / raw))"
                echo "$r,$len,ofi get,$((len * 1000 / ofi))"
                echo "$r,$len,ucx get (rma),$((len * 1000 / ucx))"
            else
                echo "$r,$len,ucx get (auto),$((len * 1000 / ucx))"
            fi
        done >> "$OUT/gets.csv"
        log "round $r: side_by_side --ucx-path $path done"
    done
done

# The job starts its own servers (on the same ports).
on node1 bash -c "kill \$(cat '$W/node1.pids'); for i in \$(seq 50); do kill -0 \$(cat '$W/node1.pids') 2>/dev/null || exit 0; sleep 0.1; done; kill -9 \$(cat '$W/node1.pids') 2>/dev/null; true"

# --- 3. MPI between the same nodes ----------------------------------------------
log "sbatch -N 2: PATTERN=pair CONNECTORS=ucx+ofi SIZES=$MPI_SIZES REPS=$REPS"
(cd "$SHARED" && FILE_DIR="$SHARED" FI_PROVIDER="$PROVIDER" OUT="$W/mpi" BUILD=0 \
    PATTERN=pair SIZES="${MPI_SIZES//,/+}" REPS="$REPS" \
    bash "$CLUSTER" exec head sbatch -W -N 2 --ntasks-per-node=1 \
    --export=ALL,CONNECTORS=ucx+ofi "$ROOT/scripts/slurm/bench.sbatch") >&2 ||
    die "the MPI job failed (its output: $SHARED/proxystore-bench-*.out)"
cp "$SHARED"/proxystore-bench-*.out "$W/mpi/" 2>/dev/null || true
cp -r "$W"/. "$OUT"/

# --- the tables --------------------------------------------------------------------
python3 - "$OUT" "$RATE" "$GOODPUT" <<'EOF'
import csv, statistics, sys, re
out, rate, goodput = sys.argv[1], sys.argv[2], float(sys.argv[3])
m = re.fullmatch(r"(\d+)([kmg]?)bit", rate.lower())
link = int(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)] / 8 / 1e6  # MB/s
def size(n):
    n = int(n)
    for u, f in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f and n % f == 0:
            return f"{n // f} {u}"
    return f"{n} B"
rows = list(csv.DictReader(open(f"{out}/gets.csv")))
by = {}
for r in rows:
    by.setdefault((int(r["size"]), r["tool"]), []).append(float(r["mb_per_s"]))
med = {k: statistics.median(v) for k, v in by.items()}
print(f"Two nodes of the virtual cluster, links {rate} ({link:.0f} MB/s; one TCP stream "
      f"gets {goodput:.0f} MB/s through it). Reader on node2, server on node1; median over "
      f"rounds of each round's median get, MB/s.\n")
print("| size | ucx_perftest ucp_get | UCX get (one-sided) | UCX get (auto) | raw fi_read | libfabric get "
      "| UCX one-sided / tool | libfabric / tool | UCX best / link | libfabric / link |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in sorted({k[0] for k in med}):
    g = lambda t: med.get((s, t), float("nan"))
    pt, ur, ua, raw, ofi = (g("ucx_perftest"), g("ucx get (rma)"), g("ucx get (auto)"),
                            g("raw fi_read"), g("ofi get"))
    print(f"| {size(s)} | {pt:.0f} | {ur:.0f} | {ua:.0f} | {raw:.0f} | {ofi:.0f} "
          f"| {100 * ur / pt:.0f}% | {100 * ofi / raw:.0f}% | {100 * max(ur, ua) / link:.0f}% "
          f"| {100 * ofi / link:.0f}% |")
try:
    mrows = list(csv.DictReader(open(f"{out}/mpi/mpi.csv")))
except FileNotFoundError:
    sys.exit("no mpi.csv in " + out + "/mpi")
print("\nThe same two nodes, one `sbatch -N 2` job (pattern pair: rank 0 on node1 makes the "
      "object, rank 1 on node2 resolves it and reads every byte), median, MB/s:\n")
want = [("mpi", "MPI send/recv"), ("mpi-get", "MPI_Get"), ("ucx", "UCX connector"),
        ("ofi", "libfabric connector")]
sizes = sorted({int(r["size_bytes"]) for r in mrows})
print("| size | " + " | ".join(w[1] for w in want) + " |")
print("|---:|" + "---:|" * len(want))
for s in sizes:
    cells = []
    for c, _ in want:
        v = [float(r["mb_per_s"]) for r in mrows if int(r["size_bytes"]) == s
             and r["connector"] == c and r["section"] == "mpi-pair"
             and r["op"] == "resolve_read_all" and r["mb_per_s"] not in ("", "-")]
        cells.append(f"{v[0]:.0f}" if v else "-")
    print(f"| {size(s)} | " + " | ".join(cells) + " |")
EOF
log "raw outputs in $OUT"
