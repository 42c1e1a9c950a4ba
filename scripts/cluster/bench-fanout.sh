#!/usr/bin/env bash
# One object, many nodes, on the virtual cluster: today's star path (every
# node resolves the proxy from the owner's object server at the same time)
# for N = 2, 4, 8 nodes, MPI_Bcast of the same bytes across the same nodes,
# the link's per-hop figures (alpha, beta), and the model of
# `proxystore-bench relay-sim` fed with them, side by side.
#
#   bash scripts/cluster/bench-fanout.sh [--rate 1gbit] [--size 128MiB] [--nodes 2,4,8]
#        [--ranks 1] [--reps 3] [--timeout-ms 600000] [--no-build] [--no-mpi] [--out DIR]
#
# Root; Debian 12 with what scripts/cluster/ needs. Brings a cluster of
# max(--nodes) nodes up with every link at --rate (`tbf`, both directions),
# runs, and takes it down at the end, also on failure or Ctrl-C. A cluster
# that is already up is left alone: the script then stops.
#
# In one run, node1 the owner:
# 1. alpha and beta of one hop node1 -> node2: the round trip of a 1-byte
#    TCP ping-pong (Python), `proxystore resolve --timing` of a 1 KiB object
#    by a fresh process (the fixed cost of one get of today's path: connect,
#    hello, get), and the goodput of one TCP stream for 3 s; then the
#    network alone for each N: N-1 TCP streams out of node1 at once (one per
#    node, 3 s), their aggregate goodput;
# 2. the star: one --size object put on node1's `proxystore-ofi-server`
#    (`tcp;ofi_rxm`; the proxy's get timeout --timeout-ms: the connector's
#    default, 10 s, is shorter than a get sharing the owner's link with 11
#    others at 1 Gbit/s), and for each N, --reps times, `proxystore resolve` of
#    its proxy started at the same instant (all nodes share one clock) by
#    --ranks processes on each of node2..nodeN; a repetition's time is from
#    that instant to the last process's end (process start included). The
#    bytes node1's interface sent are counted too;
# 3. the relay (node-level dedup + the pipelined chain among node servers,
#    the object server README's "One object, many nodes"): the same server
#    program on every node, readers with PROXYSTORE_NODE_SERVER naming their
#    node's; for each N and repetition a fresh object (same bytes, new key,
#    evicted after), read as in 2.; node1's interface and its server's
#    relay counter count what left the owner;
# 4. MPI_Bcast (benches/mpi/bcast.c, MPICH over UCX's tcp) of the same bytes
#    from node1 to node1..nodeN, one rank per node, under the cluster's Slurm
#    (`srun --mpi=pmi2`), --reps repetitions after one warm-up;
# 5. `proxystore-bench relay-sim` with the measured alpha (the TCP round
#    trip) and beta (the one stream), N = the same node counts; the star's
#    model adds the fresh process's setup (the small resolve minus the round
#    trip).
# BCAST_TIMEOUT (seconds, default 300) bounds each MPI_Bcast step.
# Prints Markdown tables on stdout (progress on stderr), keeps every output in
# --out (default results/fanout-<time> in the repository; the table also in
# its fanout.md).
set -euo pipefail

RATE=1gbit
SIZE=128MiB
NODES=2,4,8
RANKS=1
REPS=3
TIMEOUT_MS=600000
BUILD=1
MPI=1
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --nodes) NODES="$2"; shift 2 ;;
        --ranks) RANKS="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --timeout-ms) TIMEOUT_MS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-mpi) MPI=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,47p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/cluster/bench-lib.sh
. "$ROOT/scripts/cluster/bench-lib.sh"
OUT="${OUT:-$ROOT/results/fanout-$(date +%Y%m%d-%H%M%S)}"
log() { echo "bench-fanout: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (Linux namespaces)"
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer, got $REPS"
[[ "$RANKS" =~ ^[1-9][0-9]*$ ]] || die "--ranks must be a positive integer, got $RANKS"
[[ "$TIMEOUT_MS" =~ ^[1-9][0-9]*$ ]] || die "--timeout-ms must be a positive integer, got $TIMEOUT_MS"
MAXN=0
for n in ${NODES//,/ }; do
    if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 2 ] || [ "$n" -gt 32 ]; then
        die "--nodes: $n is not in 2..32"
    fi
    [ "$n" -gt "$MAXN" ] && MAXN=$n
done
BYTES=$(bytes_of "$SIZE") || die "--size: bad size $SIZE"
need_no_cluster
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ "$BUILD" = 1 ]; then
    log "building (cargo build --release)"
    (cd "$ROOT" && cargo build --release --locked -p proxystore-cli -p ofi-connector \
        -p proxystore-bench --bins) >&2
fi
for b in proxystore proxystore-ofi-server proxystore-bench; do
    [ -x "$T/$b" ] || die "$T/$b missing (run without --no-build)"
done
if [ "$MPI" = 1 ]; then
    command -v mpicc >/dev/null || die "mpicc not found (scripts/setup.sh installs MPICH), or --no-mpi"
fi

# Inputs and binaries of the run are not results.
SCRATCH="object.bin small.bin bcast reader.py"
take_down_on_exit

log "cluster up: $MAXN nodes, links $RATE"
bash "$CLUSTER" up "$MAXN" --rate "$RATE" >&2
N1=$(bash "$CLUSTER" addr node1)
SHARED=$(bash "$CLUSTER" shared)
W="$SHARED/bench-fanout"
mkdir -p "$W"
on() { bash "$CLUSTER" exec "$@"; }
export PROXYSTORE_SERVER_SECRET="${PROXYSTORE_SERVER_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export FI_PROVIDER='tcp;ofi_rxm'

# --- 1. the hop: alpha and beta -----------------------------------------------------
log "TCP ping-pong and one stream, node1 -> node2"
on node1 python3 - > "$W/tcp-server.txt" 2>&1 <<'EOF' &
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7799)); l.listen(1); l.settimeout(60)
c, _ = l.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:  # ping-pong until the client says stream
    b = c.recv(1)
    if b == b"s": break
    c.sendall(b)
buf = bytes(1 << 20)
import time
end = time.perf_counter() + 3
while time.perf_counter() < end: c.sendall(buf)
c.close()
EOF
TCP_PID=$!
on node2 python3 - "$N1" > "$W/tcp.txt" <<'EOF'
import socket, statistics, sys, time
for _ in range(200):
    try:
        s = socket.create_connection((sys.argv[1], 7799)); break
    except ConnectionRefusedError:
        time.sleep(0.05)
else:
    sys.exit("node1 never listened")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtt = []
for _ in range(2000):
    t = time.perf_counter(); s.sendall(b"p"); s.recv(1); rtt.append(time.perf_counter() - t)
s.sendall(b"s")
buf = bytearray(1 << 20); n = 0; t0 = time.perf_counter()
while True:
    k = s.recv_into(buf)
    if not k: break
    n += k
print(f"rtt_us {statistics.median(rtt) * 1e6:.1f}")
print(f"stream_mbs {n / (time.perf_counter() - t0) / 1e6:.1f}")
EOF
wait "$TCP_PID" || true
RTT_US=$(awk '/^rtt_us/ {print $2}' "$W/tcp.txt")
STREAM_MBS=$(awk '/^stream_mbs/ {print $2}' "$W/tcp.txt")
log "TCP: round trip ${RTT_US} us, one stream ${STREAM_MBS} MB/s"

# The network alone: N-1 TCP streams out of node1 at once (one to each of
# node2..nodeN, one thread each on node1, 3 s), their aggregate goodput.
echo "nodes,aggregate_mbs" > "$W/tcp-star.csv"
for n in ${NODES//,/ }; do
    on node1 python3 - "$((n - 1))" > "$W/tcp-star-server-$n.txt" 2>&1 <<'EOF2' &
import socket, sys, threading, time
k = int(sys.argv[1])
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7798)); l.listen(k); l.settimeout(60)
conns = [l.accept()[0] for _ in range(k)]
end = time.perf_counter() + 3
def feed(c):
    buf = bytes(1 << 20)
    while time.perf_counter() < end: c.sendall(buf)
    c.close()
ts = [threading.Thread(target=feed, args=(c,)) for c in conns]
for t in ts: t.start()
for t in ts: t.join()
EOF2
    srv=$!
    pids=()
    for i in $(seq 2 "$n"); do
        on "node$i" python3 - "$N1" > "$W/tcp-star-$n-node$i.txt" <<'EOF2' &
import socket, sys, time
for _ in range(200):
    try:
        s = socket.create_connection((sys.argv[1], 7798)); break
    except ConnectionRefusedError:
        time.sleep(0.05)
else:
    sys.exit("node1 never listened")
buf = bytearray(1 << 20); n = 0; first = None
while True:
    k = s.recv_into(buf)
    if not k: break
    first = first or time.time(); n += k
print(n, first, time.time())
EOF2
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "a TCP stream of the N=$n star failed"; done
    wait "$srv" || true
    # Bytes over the span from the first byte anywhere to the last anywhere.
    cat "$W"/tcp-star-"$n"-node*.txt | awk -v n="$n" '{ b += $1; if (!f || $2 < f) f = $2; if ($3 > e) e = $3 }
        END { printf "%d,%.1f\n", n, b / (e - f) / 1e6 }' >> "$W/tcp-star.csv"
    log "TCP star N=$n: $(tail -n 1 "$W/tcp-star.csv")"
done

log "proxystore-ofi-server on node1"
on node1 bash -c "'$T/proxystore-ofi-server' --provider '$FI_PROVIDER' --listen '0.0.0.0:7710' \
    --segment-size 256M --memory-limit 2G >'$W/server.log' 2>&1 &
    for i in \$(seq 600); do grep -q '^LISTEN' '$W/server.log' && exit 0; sleep 0.1; done
    echo 'the server did not start' >&2; exit 1"
# The store's configuration with the get timeout (the proxy carries it).
on node1 "$T/proxystore" --store "ofi://$N1:7710" config > "$W/store.toml"
echo "timeout_ms = $TIMEOUT_MS" >> "$W/store.toml"  # [connector.options] is the last table
python3 -c 'import os,sys; n=int(sys.argv[2]); sys.stdout.buffer.write((os.urandom(1 << 20) * (n // (1 << 20) + 1))[:n])' \
    x "$BYTES" > "$W/object.bin"
head -c 1024 /dev/urandom > "$W/small.bin"
PROXY=$(on node1 "$T/proxystore" -c "$W/store.toml" put --print proxy "$W/object.bin")
SMALL=$(on node1 "$T/proxystore" -c "$W/store.toml" put --print proxy "$W/small.bin")
# The big object alone, node2 <- node1, checked: the connector's rate for one
# get (its resolve time minus the small one's: the setup cancels).
for i in 1 2 3; do
    # shellcheck disable=SC2016  # expanded on the node
    on node2 sh -c '"$0" resolve --timing "$1" -o /tmp/got 2>&1 && cmp /tmp/got "$2" && rm /tmp/got' \
        "$T/proxystore" "$PROXY" "$W/object.bin" | awk '/^resolve_us/ {print $2}' ||
        die "the object did not resolve to its bytes on node2"
done > "$W/big-resolve-us.txt"
[ "$(wc -l < "$W/big-resolve-us.txt")" = 3 ] || die "the object did not resolve to its bytes on node2"
BIG_US=$(sort -n "$W/big-resolve-us.txt" | sed -n 2p)
for i in $(seq 21); do
    on node2 "$T/proxystore" resolve --timing "$SMALL" -o /dev/null 2>&1 | awk '/^resolve_us/ {print $2}'
done > "$W/small-resolve-us.txt"
ALPHA_US=$(sort -n "$W/small-resolve-us.txt" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
log "small resolve (fresh process): median ${ALPHA_US} us; ${SIZE} resolve: ${BIG_US} us"

# --- 2. the star ----------------------------------------------------------------------
# (/proc/net/dev is the reading process's network namespace's; /sys/class/net
# would be the host's.)
tx_bytes() { on node1 sed 's/:/ /' /proc/net/dev | awk '$1 == "eth0" { print $10 }'; }
# Runs on a node: waits for the common start instant, starts RANKS resolves,
# prints `node rank start_ns end_ns resolve_us` per process.
cat > "$W/reader.py" <<'EOF'
import os, subprocess, sys, time
bin_, proxy, at_ns, ranks, node = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
time.sleep(max(0.0, (at_ns - time.time_ns()) / 1e9))
procs = [(r, subprocess.Popen([bin_, "resolve", "--timing", proxy, "-o", "/dev/null"],
                              stderr=subprocess.PIPE, text=True)) for r in range(ranks)]
for r, p in procs:
    err = p.communicate()[1]
    end = time.time_ns()
    if p.returncode != 0:
        sys.exit(f"{node} rank {r}: resolve failed: {err}")
    us = next((l.split()[1] for l in err.splitlines() if l.startswith("resolve_us")), "nan")
    print(node, r, at_ns, end, us, flush=True)
EOF
echo "nodes,ranks,rep,seconds,max_resolve_s,owner_tx_bytes" > "$W/star.csv"
for n in ${NODES//,/ }; do
    for rep in $(seq "$REPS"); do
        before=$(tx_bytes)
        at=$(( $(date +%s%N) + 1500000000 ))  # 1.5 s from now: every reader started
        pids=()
        for i in $(seq 2 "$n"); do
            on "node$i" python3 "$W/reader.py" "$T/proxystore" "$PROXY" "$at" "$RANKS" "node$i" \
                > "$W/star-$n-$rep-node$i.txt" &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || die "a reader failed (N=$n rep $rep; see $W/star-$n-$rep-*.txt)"; done
        after=$(tx_bytes)
        cat "$W"/star-"$n"-"$rep"-node*.txt | awk -v n="$n" -v k="$RANKS" -v rep="$rep" -v tx=$((after - before)) \
            '{ t = ($4 - $3) / 1e9; if (t > m) m = t; if ($5 / 1e6 > r) r = $5 / 1e6 }
             END { printf "%d,%d,%d,%.4f,%.4f,%.0f\n", n, k, rep, m, r, tx }' >> "$W/star.csv"
        log "star N=$n rep $rep: $(tail -n 1 "$W/star.csv")"
    done
done

# --- 3. the relay -----------------------------------------------------------------------
log "the same server on node2..node$MAXN (node servers)"
for i in $(seq 2 "$MAXN"); do
    on "node$i" bash -c "'$T/proxystore-ofi-server' --provider '$FI_PROVIDER' --listen '0.0.0.0:7710' \
        --segment-size 256M --memory-limit 2G >'$W/server-node$i.log' 2>&1 &
        for i in \$(seq 600); do grep -q '^LISTEN' '$W/server-node$i.log' && exit 0; sleep 0.1; done
        echo 'the server did not start' >&2; exit 1"
done
relay_out() { on node1 "$T/proxystore-ofi-server" --stats node1:7710 | awk '$1 == "relay_bytes_out" { print $2 }'; }
echo "nodes,ranks,rep,seconds,max_resolve_s,owner_tx_bytes,owner_relay_out" > "$W/relay.csv"
for n in ${NODES//,/ }; do
    for rep in $(seq "$REPS"); do
        # A fresh object each time: no replica of an earlier one helps.
        json=$(on node1 "$T/proxystore" -c "$W/store.toml" put --print json "$W/object.bin")
        rproxy=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["proxy_hex"])' "$json")
        rkey=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key_hex"])' "$json")
        before=$(tx_bytes)
        out0=$(relay_out)
        at=$(( $(date +%s%N) + 1500000000 ))
        pids=()
        for i in $(seq 2 "$n"); do
            on "node$i" env PROXYSTORE_NODE_SERVER="node$i:7710" python3 "$W/reader.py" "$T/proxystore" \
                "$rproxy" "$at" "$RANKS" "node$i" > "$W/relay-$n-$rep-node$i.txt" &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || die "a relay reader failed (N=$n rep $rep; see $W/relay-$n-$rep-*.txt)"; done
        after=$(tx_bytes)
        out1=$(relay_out)
        on node1 "$T/proxystore" -c "$W/store.toml" evict "$rkey"
        cat "$W"/relay-"$n"-"$rep"-node*.txt | awk -v n="$n" -v k="$RANKS" -v rep="$rep" -v tx=$((after - before)) \
            -v ro=$((out1 - out0)) \
            '{ t = ($4 - $3) / 1e9; if (t > m) m = t; if ($5 / 1e6 > r) r = $5 / 1e6 }
             END { printf "%d,%d,%d,%.4f,%.4f,%.0f,%.0f\n", n, k, rep, m, r, tx, ro }' >> "$W/relay.csv"
        log "relay N=$n rep $rep: $(tail -n 1 "$W/relay.csv")"
    done
done

# --- 4. MPI_Bcast -----------------------------------------------------------------------
echo "nodes,rep,seconds" > "$W/bcast.csv"
if [ "$MPI" = 1 ]; then
    bash "$SLURM" up >&2
    mpicc -O2 -o "$W/bcast" "$ROOT/benches/mpi/bcast.c"
    for n in ${NODES//,/ }; do
        log "MPI_Bcast N=$n"
        # UCX 1.13's tcp transport can hang in MPI_Finalize with > 2 ranks
        # (scripts/cluster/README.md): the figures are printed before it, and
        # the step is bounded.
        (cd "$SHARED" && timeout "${BCAST_TIMEOUT:-300}" bash "$CLUSTER" exec head srun -N "$n" --ntasks-per-node=1 \
            --mpi=pmi2 -t 5 "$W/bcast" "$BYTES" "$REPS") > "$W/bcast-$n.txt" 2>&1 || true
        grep -q '^BCAST OK' "$W/bcast-$n.txt" || log "MPI_Bcast N=$n: no OK line (see $W/bcast-$n.txt)"
        awk -v n="$n" '$1 == "BCAST" && NF == 5 { printf "%d,%d,%s\n", n, $4, $5 }' "$W/bcast-$n.txt" >> "$W/bcast.csv"
    done
fi

# --- 5. the model with the measured figures --------------------------------------------
# Per-hop alpha: one round trip (a get asks and is answered; a relay among
# servers that are up and connected pays no more). A fresh process's resolve
# pays a one-time setup on top (connect, hello, buffers): the small resolve
# minus the round trip, added to the star's model below.
"$T/proxystore-bench" relay-sim --alpha-us "$RTT_US" --bandwidth-mbs "$STREAM_MBS" \
    --size "$BYTES" --ranks "$RANKS" --nodes "$NODES" --csv "$W/model.csv" > "$W/model.md"
for f in $SCRATCH; do rm -f "${W:?}/$f"; done
cp -r "$W"/. "$OUT"/

python3 - "$OUT" "$RATE" "$BYTES" "$RTT_US" "$ALPHA_US" "$STREAM_MBS" "$RANKS" "$BIG_US" <<'EOF' | tee "$OUT/fanout.md"
import csv, statistics, sys
out, rate, size, rtt, small, beta, ranks, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
setup = max(0.0, small - rtt) / 1e6
get_rate = size / ((big - small) / 1e6)  # B/s of one get, the setup taken out
star = list(csv.DictReader(open(f"{out}/star.csv")))
bc = list(csv.DictReader(open(f"{out}/bcast.csv")))
rl = list(csv.DictReader(open(f"{out}/relay.csv")))
tcp = {int(r["nodes"]): float(r["aggregate_mbs"]) for r in csv.DictReader(open(f"{out}/tcp-star.csv"))}
model = {(r["shape"], int(r["nodes"])): float(r["sim_s"]) for r in csv.DictReader(open(f"{out}/model.csv")) if r["sim_s"]}
med = lambda v: statistics.median(v) if v else float("nan")
print(f"Virtual cluster, links {rate}, object {size / 2**20:.0f} MiB on node1, {ranks} rank(s) per node. "
      f"Hop: TCP round trip {rtt:.0f} us (alpha), one TCP stream {beta:.0f} MB/s (beta); a fresh "
      f"process's 1 KiB resolve {small / 1e3:.0f} ms, i.e. a setup of {setup * 1e3:.0f} ms before its get. "
      f"One {size / 2**20:.0f} MiB resolve alone: {big / 1e6:.2f} s, i.e. {get_rate / 1e6:.0f} MB/s for "
      f"the get once the setup is taken out (the connector's beta). "
      f"Star model = setup + alpha + (N-1)·K·S/beta (the simulation's star); calibrated: with the "
      f"connector's beta. MPICH's MPI_Bcast is binomial below 8 ranks, scatter + ring allgather from 8: "
      f"its model is the simulation's shape of the two. Median of the repetitions, seconds.\n")
print("| N | star measured | star model | measured / model | star model, calibrated | measured / calibrated | N-1 TCP streams at once, MB/s | owner sent / (N-1)·K·S | MPI_Bcast | its model | measured / model | pipelined-chain model | pipelined-tree model | two-tree model |")
print("|---:|" + "---:|" * 13)
for n in sorted({int(r["nodes"]) for r in star}):
    s = med([float(r["seconds"]) for r in star if int(r["nodes"]) == n])
    tx = med([int(r["owner_tx_bytes"]) for r in star if int(r["nodes"]) == n])
    b = med([float(r["seconds"]) for r in bc if int(r["nodes"]) == n])
    g = lambda k: model.get((k, n), float("nan"))
    m = setup + g("star")
    agg = tcp.get(n, float("nan"))
    m2 = setup + rtt / 1e6 + (n - 1) * ranks * size / get_rate
    mb = g("binomial") if n < 8 else g("scatter-allgather")
    print(f"| {n} | {s:.2f} | {m:.2f} | {s / m:.2f} | {m2:.2f} | {s / m2:.2f} | {agg:.0f} | "
          f"{tx / ((n - 1) * ranks * size):.3f} | {b:.2f} | {mb:.2f} | {b / mb:.2f} | "
          f"{g('pipelined-chain'):.2f} | {g('pipelined-tree'):.2f} | {g('pipelined-two-tree'):.2f} |")
one = big / 1e6
print(f"\nThe relay (node servers on every node, readers through their node's), same run. One transfer "
      f"(one {size / 2**20:.0f} MiB resolve alone, setup included): {one:.2f} s. Goal at 8 nodes: "
      f"<= 1.3 x one transfer + 8 alpha = {1.3 * one + 8 * rtt / 1e6:.2f} s, and <= MPI_Bcast.\n")
print("| N | relay measured | relay / one transfer | star measured | star / relay | MPI_Bcast | relay / MPI_Bcast | owner's interface sent / S | owner's server relayed / S | pipelined-chain model | measured / model |")
print("|---:|" + "---:|" * 10)
for n in sorted({int(r["nodes"]) for r in rl}):
    r = med([float(x["seconds"]) for x in rl if int(x["nodes"]) == n])
    s = med([float(x["seconds"]) for x in star if int(x["nodes"]) == n])
    b = med([float(x["seconds"]) for x in bc if int(x["nodes"]) == n])
    tx = med([int(x["owner_tx_bytes"]) for x in rl if int(x["nodes"]) == n])
    ro = med([int(x["owner_relay_out"]) for x in rl if int(x["nodes"]) == n])
    # A relay reader maps its node server's replica: no fabric to set up,
    # so the model is the chain's alone (no fresh-process setup added).
    pc = model.get(("pipelined-chain", n), float("nan"))
    print(f"| {n} | {r:.2f} | {r / one:.2f} | {s:.2f} | {s / r:.1f} | {b:.2f} | {r / b:.2f} | "
          f"{tx / size:.3f} | {ro / size:.3f} | {pc:.2f} | {r / pc:.2f} |")
EOF
log "raw outputs in $OUT"
