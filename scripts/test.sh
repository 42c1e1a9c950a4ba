#!/usr/bin/env bash
# Set up a fresh Debian 12 machine and run every check and test (what CI runs).
#   bash scripts/test.sh
# Tests start their own services (redis-server, the UCX object server, a
# one-node Slurm) on loopback and stop them, and a virtual cluster of Linux
# namespaces for the cross-node tests (scripts/cluster/), taken down at the
# end; nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings denied)" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc (no dependencies, warnings denied)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
echo "== module cycles (each crate's modules depend one way; known cycles in scripts/module-cycles.allow)" >&2
python3 scripts/module-cycles.py --allow scripts/module-cycles.allow
echo "== main job, quick mode (benchmarks end to end)" >&2
tgt=${CARGO_TARGET_DIR:-target}
bash scripts/run-local.sh --quick --no-setup --out "$tgt/ci-quick"
echo "== fuzz pass (bounded: 15 s per target; longer: bash scripts/fuzz.sh SECONDS)" >&2
bash scripts/fuzz.sh 15
ucx_version() { # the version line of `ucx_info -v` ("# Version 1.13.1", "# Library version: 1.22.0")
    "$@" -v | sed -n 's/^# Version //p; s/^# Library version: //p'
}
echo "== a Kafka-compatible broker for the Kafka stream tests (tansu, cargo install once)" >&2
TANSU=$(bash scripts/tansu.sh)
export TANSU
echo "== cargo test (UCX connector against the system's UCX $(ucx_version ucx_info))" >&2
log=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "== C ABI: install, then C (mpicc + mpiexec), C++ and Fortran against the installed header" >&2
bash scripts/test-capi.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
echo "== Python bindings with the Python ProxyStore 1.1 (pytest)" >&2
bash scripts/test-python.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
echo "== the Python wheel pip-installed into a fresh venv (and a clear error without UCX)" >&2
bash scripts/test-wheel.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
echo "== the Slurm batch script on a one-node Slurm (slurm-wlm + munge, MpiDefault=none, sbatch -W)" >&2
bash scripts/slurm/test-local-slurm.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAILED: scripts/slurm/test-local-slurm.sh" >&2; rc=1; }
echo "== cross-node tests on a 4-node virtual cluster of namespaces (sbatch -N 4, faults; budget 10 min)" >&2
timeout 900 bash scripts/cluster/test-cross-node.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAILED: scripts/cluster/test-cross-node.sh" >&2; rc=1; }
set -e

# The UCX connector again, against a current UCX (the libucx-cu12 wheel from
# PyPI, unpacked under target/), built into a target directory of its own.
# Seeded with the libraries just built (no test binaries), only ucx-sys and
# ucx-connector compile again.
wheel_ucx=$(bash scripts/ucx-wheel.sh)
if [ ! -d "$tgt/ucx-dir/debug" ]; then
    mkdir -p "$tgt/ucx-dir/debug/deps"
    cp -a "$tgt/debug/.fingerprint" "$tgt/debug/build" "$tgt/ucx-dir/debug/"
    find "$tgt/debug/deps" -maxdepth 1 -type f \( -name '*.rlib' -o -name '*.rmeta' \
        -o -name '*.so' -o -name '*.d' \) -exec cp -a -t "$tgt/ucx-dir/debug/deps/" {} +
fi
# shellcheck disable=SC2317  # called through ucx_version
wheel_info() { LD_LIBRARY_PATH="$wheel_ucx/lib" "$wheel_ucx/bin/ucx_info" "$@"; }
echo "== cargo test -p ucx-connector (against UCX $(ucx_version wheel_info), from the libucx-cu12 wheel)" >&2
set +e
UCX_DIR="$wheel_ucx" CARGO_TARGET_DIR="$tgt/ucx-dir" UCX_WARN_UNUSED_ENV_VARS=n \
    cargo test -p ucx-connector --locked --no-fail-fast 2>&1 | tee -a "$log"
rc2=${PIPESTATUS[0]}
set -e
[ "$rc" -ne 0 ] || rc=$rc2
# proxystore-server and libproxystore.so built the same way carry a run path
# to that UCX and run against it (readelf -d, /proc/PID/maps).
echo "== proxystore-server and libproxystore.so against UCX $(ucx_version wheel_info) (run path)" >&2
set +e
UCX_DIR="$wheel_ucx" CARGO_TARGET_DIR="$tgt/ucx-dir" bash scripts/test-rpath.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
set -e
# Its binaries carry a run path to that UCX; a UCX of another version put
# first on the library path is refused with a clear message.
echo "== a server built against UCX $(ucx_version wheel_info) run with the system's UCX" >&2
sys_lib=$(pkg-config --variable=libdir ucx)
set +e
refused=$(LD_LIBRARY_PATH="$sys_lib" "$tgt"/ucx-dir/debug/proxystore-ucx-server --listen 127.0.0.1:0 2>&1)
code=$?
set -e
echo "$refused" >&2
if [ "$code" -eq 0 ] || ! grep -q "UCX version mismatch" <<<"$refused"; then
    echo "FAILED: the mismatched UCX was not refused (exit $code)" >&2
    rc=1
fi
# One closing line over every test binary (the last binary alone may hold no
# test). Child-process entry points are ignored tests whose reason names them
# (`#[ignore = "child-process entry point"]`, the conformance suite's "entry
# point of the conformance suite's child processes") that their parent test
# runs with `--ignored --exact` in a child process: counted apart, neither as
# passed nor as skipped.
awk '/^test result:/ {p += $4; f += $6; i += $8}
     / \.\.\. ignored, .*entry point/ {c++}
     END {printf "tests: %d passed, %d failed, %d skipped (%d child-process entry points run by their parent tests)\n", p, f, i - c, c}' "$log"
rm -f "$log"
exit "$rc"
