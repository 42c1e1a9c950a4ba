# shellcheck shell=bash
# Sourced by the virtual cluster's benchmark scripts (bench-two-nodes.sh,
# bench-fanout.sh): sizes, the one-cluster-at-a-time check and the teardown.
# The sourcing script sets ROOT (the repository) before it sources this
# file, defines log and die, and sets OUT (where results go) and, once the
# cluster is up, W (the working directory on the shared file system).

# (Used by the sourcing scripts.)
# shellcheck disable=SC2034
CLUSTER="$ROOT/scripts/cluster/cluster.sh"
# shellcheck disable=SC2034
SLURM="$ROOT/scripts/cluster/slurm.sh"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck disable=SC2034
T="$TARGET/release"

# bytes_of SIZE: 64MiB -> 67108864 (K/M/G and KiB/MiB/GiB: powers of 1024).
bytes_of() {
    python3 -c 'import re,sys
m=re.fullmatch(r"(\d+)\s*([KMG]?)(i?B)?",sys.argv[1].strip(),re.I)
if not m: sys.exit("bad size "+sys.argv[1])
print(int(m.group(1))*1024**" KMG".index((m.group(2) or " ").upper()))' "$1"
}

# Stops the script when a virtual cluster is already up: two clusters cannot
# share the addresses, and another's is not ours to take down.
need_no_cluster() {
    if [ -e "${PSC_STATE:-/run/proxystore-cluster}/nodes" ]; then
        die "a virtual cluster is already up (cluster.sh status); wait until it is down"
    fi
}

# On exit, also on failure or Ctrl-C: W's files but those named in SCRATCH
# copied to OUT, and the cluster taken down.
bench_cleanup() {
    local rc=$? f
    trap - EXIT INT TERM
    if [ -n "${W:-}" ] && [ -d "$W" ]; then
        for f in ${SCRATCH:-}; do rm -f "${W:?}/$f"; done
        cp -r "$W"/. "$OUT"/ 2>/dev/null
    fi
    log "taking the cluster down"
    bash "$CLUSTER" down >/dev/null 2>&1 || true
    exit "$rc"
}
take_down_on_exit() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}
