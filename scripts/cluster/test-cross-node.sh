#!/usr/bin/env bash
# Cross-node tests on a 4-node virtual cluster (scripts/cluster/cluster.sh),
# as CI runs them (scripts/test.sh) and as a developer runs them (root):
#
#   bash scripts/cluster/test-cross-node.sh
#
# Time budget: 10 minutes after the build (141 s on this 2-core machine);
# every step is bounded by a timeout. The cluster comes up at the start and
# is taken down at the end, also on failure or Ctrl-C (trap): no namespace
# and no process is left.
#   a. the conformance suites of the UCX (UCX_TLS=tcp), libfabric
#      (tcp;ofi_rxm) and, where the build finds Margo (MARGO_DIR, or
#      pkg-config margo >= 0.20), Margo (ofi+tcp) connectors on node2 against
#      object servers on node1, asserting that gets take the one-sided path
#      into the reader's buffers, never a mapping (tests/cross_node.rs of
#      each crate);
#   b. a proxy made on node1 resolved on node2..node4 by a process that has
#      only the proxy (`proxystore resolve`), for file (the shared
#      directory), Redis (on node1), UCX, libfabric and Margo (where found):
#      the same bytes;
#   c. scripts/slurm/bench.sbatch with sbatch -N 4 in quick mode, every
#      connector, checked as scripts/slurm/test-local-slurm.sh checks it;
#   d. faults, each bounded in time, readers watching objects with
#      `proxystore watch` (one process per reader, gets every 200 ms, each
#      bounded by the proxies' timeout of FAULT_TIMEOUT_MS, default 2000):
#      link cut, partition, server restart, node loss (see each below);
#   e. one object, many nodes: a libfabric server on every node, readers
#      with PROXYSTORE_NODE_SERVER naming their node's; node1's link at
#      200 Mbit/s so that transfers take a while: 3 readers on each of
#      node2..node4 at once get every byte, each node server receives the
#      object once and node1 sends it once (server counters and node1's
#      interface); an evict during a relay (whole object or not found, never
#      other bytes; not found everywhere after); a relay node killed
#      mid-transfer (the next node finishes from the owner);
#   f. a node's CPU share (`cluster.sh cpu`): a process `exec` starts on
#      node4 is in the node's cgroup; capped at 0.1 CPU, a 2 s busy loop
#      there gets at most 0.5 s of CPU; with the cap off, more (skipped,
#      and said, on a machine without a cgroup CPU controller).
# Environment: STEPS (default a,b,c,d,e,f), FAULTS (default
# cut,partition,restart,loss), FAULT_TIMEOUT_MS, FAULT_BOUND_MS (the longest a
# get may take during a fault, default 2 x timeout + 2 s), CROSS_NODE_KEEP=1
# (keep the logs directory, cross-node/ in cargo's target directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
cluster=$repo/scripts/cluster/cluster.sh
slurm=$repo/scripts/cluster/slurm.sh
say() { echo "test-cross-node: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
# shellcheck source=scripts/slurm/lib.sh
. scripts/slurm/lib.sh
steps=${STEPS:-a,b,c,d,e,f}
step() { [[ ",$steps," == *",$1,"* ]]; }
faults=${FAULTS:-cut,partition,restart,loss}
timeout_ms=${FAULT_TIMEOUT_MS:-2000}
[ "$(id -u)" -eq 0 ] || fail "needs root (namespaces)"
slurm_install_packages
command -v nft > /dev/null || fail "nft not found (scripts/setup.sh installs nftables)"

# --- binaries -----------------------------------------------------------------------
target=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=$target/release
# Margo is in no package registry: tested when a build of it is found (as
# scripts/run-local.sh finds it).
crates=(-p ucx-connector -p ofi-connector)
if [ -n "${MARGO_DIR:-}" ] || pkg-config --exists 'margo >= 0.20' 2>/dev/null; then
  margo=1
  crates+=(-p margo-connector)
else
  margo=0
  say "margo: skipped: margo not built (no MARGO_DIR, no pkg-config margo >= 0.20)"
fi
say "building the servers, the CLI, the benchmark and the cross-node test binaries (release)"
cargo build --release --locked -q -p proxystore-bench "${crates[@]}" -p proxystore-cli --bins
tests=$(cargo test --release --locked -q "${crates[@]}" --test cross_node --no-run \
  --message-format=json | sed -n 's/.*"executable":"\([^"]*cross_node[^"]*\)".*/\1/p')
[ "$(wc -l <<<"$tests")" -eq $((${#crates[@]} / 2)) ] ||
  fail "expected $((${#crates[@]} / 2)) cross_node test binaries, got: $tests"
started=$SECONDS

# --- the cluster --------------------------------------------------------------------
cleanup() {
  local rc=$?
  set +e
  "$slurm" down 2>/dev/null
  "$cluster" down
  if [ "${CROSS_NODE_KEEP:-0}" = 1 ]; then say "kept $logs"; else rm -rf "$logs"; fi
  exit "$rc"
}
# In cargo's target directory: seen at the same path on every node (a node's
# /tmp is its own).
logs=$target/cross-node
rm -rf "$logs"
mkdir -p "$logs"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$cluster" up 4
shared=$("$cluster" shared)
run() { "$cluster" exec "$@"; }
# A long command in the background, waited for: a signal to this script is
# handled at once (the trap takes the cluster down), not when it ends.
waited() {
  "$@" &
  wait $!
}

# A process on NODE in the background, named NAME (its pid, in the node's
# own PID namespace, in $logs/NAME.pid; output in $logs/NAME.log).
start() {
  local node=$1 name=$2
  shift 2
  # shellcheck disable=SC2016  # expanded on the node
  setsid "$cluster" exec "$node" sh -c 'echo $$ > "$0"; exec "$@"' "$logs/$name.pid" "$@" \
    < /dev/null > "$logs/$name.log" 2>&1 &
  disown # ended with its node (cluster.sh down), not waited for
}
stop() { # NODE NAME: SIGTERM, and wait (10 s) until it is gone
  local p
  p=$(cat "$logs/$2.pid")
  run "$1" kill "$p" 2>/dev/null || true
  for _ in $(seq 100); do run "$1" kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  fail "$2 on $1 did not stop on SIGTERM"
}
# Wait (60 s) for PATTERN in NAME's log.
ready() {
  for _ in $(seq 600); do
    grep -q -- "$2" "$logs/$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 not ready: $(tail -n 5 "$logs/$1.log")"
}
ucx_server() { # NODE NAME PORT
  start "$1" "$2" "$bin/proxystore-ucx-server" --tls tcp --listen "0.0.0.0:$3" \
    --segment-size 64M --memory-limit 2G
  ready "$2" '^LISTEN '
}
ofi_server() { # NODE NAME PORT
  start "$1" "$2" "$bin/proxystore-ofi-server" --provider 'tcp;ofi_rxm' --listen "0.0.0.0:$3" \
    --segment-size 64M --memory-limit 2G
  ready "$2" '^LISTEN '
}
margo_server() { # NODE NAME PORT: Mercury's ofi+tcp on the node's address
  start "$1" "$2" "$bin/proxystore-margo-server" --margo-protocol "ofi+tcp://$("$cluster" addr "$1")" \
    --listen "0.0.0.0:$3" --segment-size 64M --memory-limit 2G
  ready "$2" '^LISTEN '
}
# Readers of the libfabric connector pick the provider from the environment,
# and those of the Margo connector the Mercury protocol.
export FI_PROVIDER='tcp;ofi_rxm'
export PROXYSTORE_MARGO_PROTOCOL=ofi+tcp

# --- a. conformance across nodes ----------------------------------------------------
if step a; then
  ucx_server node1 ucx1 7700
  ofi_server node1 ofi1 7710
  [ "$margo" = 0 ] || margo_server node1 margo1 7720
  # (The suite's child-process entry point, an ignored test, is run by the
  # cross-process cases themselves, not as a test of its own.)
  say "a: the conformance suites on node2 against the servers on node1"
  [ "$margo" = 1 ] || say "a: margo: skipped: margo not built"
  for t in $tests; do
    say "a: $(basename "$t") --ignored (server $("$cluster" addr node1))"
    PROXYSTORE_TEST_REMOTE_UCX=node1:7700 PROXYSTORE_TEST_REMOTE_OFI=node1:7710 \
      PROXYSTORE_TEST_REMOTE_MARGO=node1:7720 UCX_TLS=tcp \
      waited timeout 300 "$cluster" exec node2 "$t" --ignored --test-threads=2 \
      --skip conformance_child_entry ||
      fail "a: the cross-node tests of $(basename "$t") failed"
  done
  stop node1 ucx1
  stop node1 ofi1
  [ "$margo" = 0 ] || stop node1 margo1
  say "a: passed ($((SECONDS - started)) s so far)"
fi

# Objects of the later steps: OBJ bytes whose content names them.
object() { # FILE LABEL SIZE
  local f=$1
  shift
  python3 -c 'import sys; lab = (sys.argv[1] + "\n").encode(); n = int(sys.argv[2]); sys.stdout.buffer.write((lab * (n // len(lab) + 1))[:n])' \
    "$@" > "$f"
}
# The TOML configuration of a store (every option the connector's default
# but the timeout), for `proxystore -c`.
store_toml() { # FILE KIND OPTIONS...
  local f=$1 kind=$2
  shift 2
  # One store per object: a process holds one store of a name.
  printf 'name = "%s"\n[connector]\nkind = "%s"\n[connector.options]\n' "$(basename "$f" .toml)" "$kind" > "$f"
  printf '%s\n' "$@" >> "$f"
}

# --- b. a proxy made on node1, resolved on every other node --------------------------
if step b; then
  ucx_server node1 ucx1 7700
  ofi_server node1 ofi1 7710
  [ "$margo" = 0 ] || margo_server node1 margo1 7720
  start node1 redis1 redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --save "" --appendonly no
  ready redis1 'Ready to accept connections'
  mkdir -p "$shared/files"
  declare -A url=([file]="file://$shared/files" [redis]="redis://node1:6379/0"
    [ucx]="ucx://node1:7700" [ofi]="ofi://node1:7710" [margo]="margo://node1:7720")
  kinds=(file redis ucx ofi)
  if [ "$margo" = 1 ]; then kinds+=(margo); else say "b: margo: skipped: margo not built"; fi
  for c in "${kinds[@]}"; do
    object "$shared/b-$c.bin" "made on node1 for $c" $((3 << 20))
    proxy=$(run node1 "$bin/proxystore" --store "${url[$c]}" put --print proxy "$shared/b-$c.bin")
    for n in node2 node3 node4; do
      # Only the proxy crosses: the reader's private /tmp gets the bytes.
      # shellcheck disable=SC2016  # expanded on the node
      run "$n" sh -c '"$0" resolve "$1" -o /tmp/got && cmp /tmp/got "$2" && rm /tmp/got' \
        "$bin/proxystore" "$proxy" "$shared/b-$c.bin" ||
        fail "b: the $c proxy made on node1 did not resolve to its bytes on $n"
    done
    say "b: $c: proxy made on node1 (${#proxy} hex digits) resolved on node2, node3, node4"
  done
  stop node1 ucx1
  stop node1 ofi1
  [ "$margo" = 0 ] || stop node1 margo1
  stop node1 redis1
  say "b: passed ($((SECONDS - started)) s so far)"
fi

# --- c. sbatch -N 4 -----------------------------------------------------------------
if step c; then
  "$slurm" up
  connectors=file,redis,ucx,ofi
  out=$shared/slurm/quick
  mkdir -p "$shared/slurm"
  say "c: sbatch -W -N 4 bench.sbatch (QUICK=1, CONNECTORS=$connectors, FI_PROVIDER=$FI_PROVIDER)"
  rc=0
  # Submitted from the shared directory (the job's output file lands there).
  QUICK=1 BUILD=0 OUT=$out FILE_DIR=$shared waited env -C "$shared/slurm" timeout 600 \
    "$cluster" exec head sbatch -W --parsable -N 4 --time=10 \
    --export="ALL,CONNECTORS=${connectors//,/+}" "$repo/scripts/slurm/bench.sbatch" > "$shared/slurm/jobid" || rc=$?
  jobid=$(cut -d';' -f1 "$shared/slurm/jobid")
  cat "$shared/slurm/proxystore-bench-$jobid.out" >&2 || true
  [ "$rc" -eq 0 ] || fail "c: sbatch -N 4: the job failed (exit $rc)"
  slurm_check_bench "$out" "$connectors" 4 "$shared"
  grep -q '^job .*: 4 node(s)' "$out/job.txt" || fail "c: the job did not run on 4 nodes ($out/job.txt)"
  "$slurm" down
  say "c: passed (job $jobid on node1..node4; $((SECONDS - started)) s so far)"
fi

# --- e. one object, many nodes: dedup and relay --------------------------------------
# A stat of node NODE's server: `proxystore-ofi-server --stats`.
stat_of() { # NODE NAME
  run "$1" "$bin/proxystore-ofi-server" --stats "$1:7730" | awk -v n="$2" '$1 == n { print $2 }'
}
# Bytes node1's interface sent (its namespace's /proc/net/dev).
node1_tx() { run node1 sed 's/:/ /' /proc/net/dev | awk '$1 == "eth0" { print $10 }'; }
# resolve_on NODE NAME PROXY: a reader through NODE's server, in the
# background; its exit status in $logs/NAME.rc, its object in $shared/NAME.out.
resolve_on() {
  # shellcheck disable=SC2016  # expanded on the node
  "$cluster" exec "$1" env PROXYSTORE_NODE_SERVER="$1:7730" sh -c \
    '"$0" resolve "$1" -o "$2"; echo $? > "$3"' "$bin/proxystore" "$3" "$shared/$2.out" "$logs/$2.rc" \
    > "$logs/$2.log" 2>&1 &
}
# resolved NAME FILE: the reader ended (60 s) with FILE's bytes.
resolved() {
  for _ in $(seq 600); do [ -s "$logs/$1.rc" ] && break; sleep 0.1; done
  [ "$(cat "$logs/$1.rc" 2>/dev/null)" = 0 ] || fail "$1: resolve failed: $(tail -n 3 "$logs/$1.log")"
  cmp -s "$shared/$1.out" "$2" || fail "$1: other bytes than the object's"
}
if step e; then
  say "e: a libfabric server on every node; node1's link at 200mbit"
  for n in node1 node2 node3 node4; do
    start "$n" "relay-$n" "$bin/proxystore-ofi-server" --provider 'tcp;ofi_rxm' --listen 0.0.0.0:7730 \
      --segment-size 64M --memory-limit 1G --relay-timeout 2000
    ready "relay-$n" '^LISTEN '
  done
  "$cluster" rate node1 200mbit
  store_toml "$logs/relay.toml" ofi 'server = "node1:7730"' 'timeout_ms = 30000' "provider = \"$FI_PROVIDER\""
  size=$((16 << 20))
  object "$shared/e1.bin" "one object for many nodes" "$size"
  proxy=$(run node1 "$bin/proxystore" -c "$logs/relay.toml" put --print proxy "$shared/e1.bin")
  tx0=$(node1_tx)
  for n in node2 node3 node4; do for r in 1 2 3; do resolve_on "$n" "e1-$n-$r" "$proxy"; done; done
  for n in node2 node3 node4; do for r in 1 2 3; do resolved "e1-$n-$r" "$shared/e1.bin"; done; done
  sent=$(($(node1_tx) - tx0))
  # The stored object: its bytes and the codec's header.
  stored=$(stat_of node1 used)
  out=$(stat_of node1 relay_bytes_out)
  [ "$out" -ge "$size" ] && [ "$out" -lt $((size + 4096)) ] ||
    fail "e: node1's server sent $out bytes to node servers (want the object once: $size and its header)"
  for n in node2 node3 node4; do
    f=$(stat_of "$n" relay_fetches) b=$(stat_of "$n" relay_bytes_in) h=$(stat_of "$n" replica_hits)
    [ "$f" = 1 ] && [ "$b" = "$out" ] ||
      fail "e: $n's server received the object $f times ($b bytes) for its 3 readers (want once, $out)"
    [ "$h" = 2 ] || fail "e: $n: $h replica hits (want 2: the other two readers)"
  done
  [ "$stored" -ge "$out" ] || fail "e: node1 stores $stored bytes, less than the $out it sent"
  # The interface: the object once, plus headers and control (< 10%).
  [ "$sent" -lt $((size * 11 / 10)) ] ||
    fail "e: node1's interface sent $sent bytes for a $size-byte object to 3 nodes x 3 readers"
  say "e: 9 readers on node2..node4 got every byte; node1 sent $sent bytes (the object: $size); each node server received it once"

  # An evict during a relay: a whole object or not found, never other bytes.
  object "$shared/e2.bin" "evicted while relayed" "$size"
  json=$(run node1 "$bin/proxystore" -c "$logs/relay.toml" put --print json "$shared/e2.bin")
  proxy2=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["proxy_hex"])' "$json")
  key2=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key_hex"])' "$json")
  for n in node2 node3 node4; do resolve_on "$n" "e2-$n" "$proxy2"; done
  sleep 0.4
  run node1 "$bin/proxystore" -c "$logs/relay.toml" evict "$key2"
  for n in node2 node3 node4; do
    for _ in $(seq 600); do [ -s "$logs/e2-$n.rc" ] && break; sleep 0.1; done
    case $(cat "$logs/e2-$n.rc") in
      0) cmp -s "$shared/e2-$n.out" "$shared/e2.bin" || fail "e: $n got other bytes during an evict" ;;
      1) ;; # not stored
      *) fail "e: $n: resolve failed during an evict: $(tail -n 3 "$logs/e2-$n.log")" ;;
    esac
    rm -f "$logs/e2-$n.rc"
    resolve_on "$n" "e2-$n" "$proxy2"
    for _ in $(seq 600); do [ -s "$logs/e2-$n.rc" ] && break; sleep 0.1; done
    [ "$(cat "$logs/e2-$n.rc")" = 1 ] || fail "e: $n: the evicted object still resolves"
  done
  say "e: evict during a relay: whole objects or not found; not found everywhere after"

  # A relay node killed mid-transfer: node3 reads from node2 (it asked
  # after it), node2's server is killed; node3 finishes from the owner.
  object "$shared/e3.bin" "relay node killed" $((32 << 20))
  proxy3=$(run node1 "$bin/proxystore" -c "$logs/relay.toml" put --print proxy "$shared/e3.bin")
  out0=$(stat_of node1 relay_bytes_out)
  resolve_on node2 e3-node2 "$proxy3"
  sleep 0.3
  resolve_on node3 e3-node3 "$proxy3"
  sleep 0.6
  run node2 kill -9 "$(cat "$logs/relay-node2.pid")"
  resolved e3-node3 "$shared/e3.bin"
  # node2's reader lost its node server: it read from the owner itself.
  resolved e3-node2 "$shared/e3.bin"
  [ "$(stat_of node3 relay_bytes_in)" -ge $((32 << 20)) ] || fail "e: node3's server did not receive the object"
  # What the owner relayed for it (its server's counter; node2's reader's
  # own get after the kill is not a relay): node2's part before the kill
  # and the rest of node3's, so about the object once if node3 had been
  # reading from node2 (node3 trails node2 by little), but the object plus
  # node2's part if node3 had read from the owner all along.
  out=$(($(stat_of node1 relay_bytes_out) - out0))
  [ "$out" -lt $(((32 << 20) * 115 / 100)) ] ||
    fail "e: the owner relayed $out bytes of a $((32 << 20))-byte object: node3 did not read from node2 before the kill"
  [ "$out" -gt $((32 << 20)) ] || fail "e: the owner relayed $out bytes: node3 never resumed from it"
  say "e: a relay node killed mid-transfer: node3 finished from the owner (the owner relayed $out bytes of a $((32 << 20))-byte object), node2's reader read it directly"
  "$cluster" rate node1 10gbit
  for n in node1 node3 node4; do stop "$n" "relay-$n"; done
  say "e: passed ($((SECONDS - started)) s so far)"
fi
# (e runs before d: d's node loss takes node3 down for good.)
# --- d. faults ------------------------------------------------------------------------
# watch NAME NODE SECONDS LIST: a reader on NODE for SECONDS (one process).
watch() {
  start "$2" "$1" timeout $(($3 + 30)) "$bin/proxystore" watch --every-ms 200 --for-s "$3" "$4"
}
# Wait for reader NAME to end; its exit status must be 0 (3: wrong bytes).
watched() {
  local p
  for _ in $(seq 900); do
    grep -q . "$logs/$1.pid" 2>/dev/null || { sleep 0.1; continue; }
    p=$(cat "$logs/$1.pid")
    run "$2" kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  ! grep -q ' WRONG ' "$logs/$1.log" || fail "$1: a get returned other bytes: $(grep -m1 ' WRONG ' "$logs/$1.log")"
  grep -q ' ok ' "$logs/$1.log" || fail "$1: no get succeeded: $(tail -n 3 "$logs/$1.log")"
}
# Gets of LABEL in reader NAME's log that began in FROM..TO (ms since the
# Unix epoch, as `watch` prints them): "ok", "none", "error" counted, the
# "ok" ones that also ended by TO, and the longest get (ms).
tally() { # NAME LABEL FROM TO
  awk -v l="$2" -v a="$3" -v b="$4" '$2 == l && $1 >= a && $1 < b {
      n[$3]++; if ($1 + $4 <= b && $3 == "ok") inside++; if ($4 > m) m = $4 }
    END { printf "%d %d %d %d %d\n", n["ok"], n["none"], n["error"], inside, m }' "$logs/$1.log"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
forever=99999999999999
# Each get during a fault ends within the proxies' timeout, plus 2 s for the
# connection attempt and the round's other gets.
bound=${FAULT_BOUND_MS:-$((timeout_ms * 2 + 2000))}
# A window in ms from the start of the current fault (t0).
span() {
  if [ "$2" = "$forever" ]; then echo "from $(($1 - t0)) ms"; else echo "in $(($1 - t0))..$(($2 - t0)) ms"; fi
}
# check NAME LABEL FROM TO WANT: the gets of LABEL that began in the
# window are all WANT: ok; or failed (none or an error; at least one, and
# none ok that also ended in the window: a get that began during a fault
# may end after it, and succeed then). Each within the bound.
check() {
  local ok none err inside max
  read -r ok none err inside max < <(tally "$1" "$2" "$3" "$4")
  case $5 in
    ok) if [ "$none" -ne 0 ] || [ "$err" -ne 0 ] || [ "$ok" -eq 0 ]; then
      fail "$1: $2 $(span "$3" "$4"): $ok ok, $none none, $err errors (want all ok)"
    fi ;;
    failed) if [ "$inside" -ne 0 ] || [ $((none + err)) -eq 0 ]; then
      fail "$1: $2 $(span "$3" "$4"): $ok ok ($inside ended in it), $none none, $err errors (want all failed)"
    fi ;;
  esac
  [ "$max" -le "$bound" ] || fail "$1: a get of $2 $(span "$3" "$4") took $max ms (bound $bound ms)"
  say "  $1 $2 $(span "$3" "$4"): $ok ok, $none none, $err errors, longest $max ms"
}
# put_on NODE LABEL KIND PORT: an object put by NODE to its own server,
# its line for `proxystore watch` appended to $logs/LIST-$KIND.
put_on() {
  local node=$1 label=$2 kind=$3 port=$4 f extra=()
  f=$shared/d-$label.bin
  object "$f" "$label" $((1 << 20))
  [ "$kind" != ofi ] || extra=("provider = \"$FI_PROVIDER\"")
  store_toml "$logs/$label.toml" "$kind" "server = \"$node:$port\"" "timeout_ms = $timeout_ms" "${extra[@]}"
  echo "$label $(run "$node" "$bin/proxystore" -c "$logs/$label.toml" put --print proxy "$f") $f"
}
# fault_window SECONDS LEAD DO UNDO READER:NODE...: readers (`proxystore
# watch` of $logs/list) for SECONDS; after LEAD seconds `cluster.sh DO`, 5 s
# later `cluster.sh UNDO`, then the readers are waited for. Sets t0 (start),
# before (DO started), on (DO done), off (UNDO started), after (UNDO done).
fault_window() {
  local secs=$1 lead=$2 do=$3 undo=$4 r
  shift 4
  t0=$(now_ms)
  for r in "$@"; do watch "${r%%:*}" "${r#*:}" "$secs" "$logs/list"; done
  sleep "$lead"
  before=$(now_ms)
  # shellcheck disable=SC2086  # DO and UNDO are cluster.sh's words
  "$cluster" $do
  on=$(now_ms)
  sleep 5
  off=$(now_ms)
  # shellcheck disable=SC2086
  "$cluster" $undo
  after=$(now_ms)
  for r in "$@"; do watched "${r%%:*}" "${r#*:}"; done
}

# (b) link cut: node1's link down for 5 s while readers on node2 and node3
# get every object: node1's fail cleanly (none or a clear error, each within
# the bound) while it is down, every other keeps resolving, and node1's
# resolve again in the same reader processes after the link is back.
fault_cut() {
  say "d(b): node1's link cut for 5 s"
  fault_window 14 3 "link node1 down" "link node1 up" cut2:node2 cut3:node3
  local r
  for r in cut2 cut3; do
    check "$r" ucx-node1 "$t0" "$before" ok
    check "$r" ucx-node1 "$on" "$off" failed
    check "$r" ofi-node1 "$on" "$off" failed
    check "$r" ucx-node1 $((after + 4000)) "$forever" ok
    check "$r" ofi-node1 $((after + 4000)) "$forever" ok
  done
  check cut2 ucx-node2 "$t0" "$forever" ok
  check cut3 ucx-node3 "$t0" "$forever" ok
  check cut2 ucx-node3 "$t0" "$forever" ok
}

# (c) partition: node1 and node2 cannot reach each other for 5 s, both
# still reach node3 (and node3 both of them).
fault_partition() {
  say "d(c): node1 and node2 partitioned for 5 s"
  fault_window 12 2 "partition node1 node2" "heal node1 node2" part2:node2 part3:node3
  check part2 ucx-node1 "$on" "$off" failed
  check part2 ucx-node1 $((after + 4000)) "$forever" ok
  check part2 ucx-node3 "$t0" "$forever" ok
  check part3 ucx-node1 "$t0" "$forever" ok
  check part3 ucx-node2 "$t0" "$forever" ok
}

# (d) node1's UCX server restarted on its port, and another object of the
# same size put there (into the slot the old one had): the old key gives
# none or a clear error, never the new bytes (nor any other).
fault_restart() {
  say "d(d): node1's UCX server restarted"
  t0=$(now_ms)
  watch rst2 node2 10 "$logs/list"
  sleep 2
  local stopped_at
  stop node1 ucx-node1
  stopped_at=$(now_ms)
  ucx_server node1 ucx-node1 7700
  put_on node1 ucx-node1-new ucx 7700 > "$logs/list-new"
  watched rst2 node2
  check rst2 ucx-node1 "$stopped_at" "$forever" failed
  check rst2 ucx-node2 "$t0" "$forever" ok
  run node2 "$bin/proxystore" watch --every-ms 100 --for-s 1 "$logs/list-new" > "$logs/rst-new.log" ||
    fail "d(d): the new object on the restarted server: $(tail -n 2 "$logs/rst-new.log")"
}

# (a) node loss: every process of node3 killed, and its link cut (a lost
# host does not answer), while readers on node1 and node2 get every object:
# node3's objects fail within the bound, every other keeps resolving.
fault_loss() {
  say "d(a): node3 lost (every process killed, no answer)"
  t0=$(now_ms)
  # node1's UCX object as it is now (the restart put a new one).
  grep -v '^ucx-node1 ' "$logs/list" > "$logs/list-loss"
  cat "$logs/list-new" >> "$logs/list-loss" 2>/dev/null || true
  watch loss1 node1 8 "$logs/list-loss"
  watch loss2 node2 8 "$logs/list-loss"
  sleep 3
  local lost_at killed_at r
  lost_at=$(now_ms)
  "$cluster" kill node3
  "$cluster" link node3 down
  killed_at=$(now_ms)
  watched loss1 node1
  watched loss2 node2
  for r in loss1 loss2; do
    check "$r" ucx-node3 "$t0" $((lost_at - 200)) ok
    check "$r" ucx-node3 "$killed_at" "$forever" failed
    check "$r" ucx-node2 "$t0" "$forever" ok
    check "$r" ofi-node1 "$t0" "$forever" ok
  done
}

if step d; then
  say "d: faults $faults (proxies with timeout_ms=$timeout_ms; a get during a fault must end within $bound ms)"
  for n in node1 node2 node3; do ucx_server "$n" "ucx-$n" 7700; done
  ofi_server node1 ofi-node1 7710
  {
    for n in node1 node2 node3; do put_on "$n" "ucx-$n" ucx 7700; done
    put_on node1 ofi-node1 ofi 7710
  } > "$logs/list"
  for f in ${faults//,/ }; do
    declare -F "fault_$f" > /dev/null || fail "no fault $f (cut, partition, restart, loss)"
    "fault_$f"
  done
  say "d: passed ($((SECONDS - started)) s so far)"
fi
# (cluster.sh cpu needs a cgroup CPU controller: v1's, or v2 with cpu.)
if step f && ! [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] &&
  ! grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  say "f: skipped: this machine has no cgroup CPU controller"
elif step f; then
  say "f: node4's CPU share"
  # CPU seconds a busy loop of 2 s (wall) got on node4.
  busy() {
    run node4 python3 -c 'import os, time
t = time.monotonic()
while time.monotonic() - t < 2: pass
c = os.times()
print(f"{c.user + c.system:.2f}")'
  }
  "$cluster" cpu node4 0.1
  group=$(run node4 cat /proc/self/cgroup)
  grep -q ":/${PSC_PREFIX:-psc}-node4\$" <<<"$group" ||
    fail "f: a process exec started on node4 is not in node4's cgroup: $group"
  capped=$(busy)
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) > 0.5)' "$capped" ||
    fail "f: capped at 0.1 CPU, a 2 s busy loop on node4 got $capped s of CPU"
  "$cluster" cpu node4 off
  free=$(busy)
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) <= 0.5)' "$free" ||
    fail "f: not capped, a 2 s busy loop on node4 got only $free s of CPU"
  say "f: passed (2 s busy: $capped s of CPU capped at 0.1, $free s not capped)"
fi
say "passed: steps $steps in $((SECONDS - started)) s after the build"
