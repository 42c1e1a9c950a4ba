#!/usr/bin/env bash
# Set up a fresh Debian 12 machine and run every check and test (what CI runs).
#   bash scripts/test.sh
# Tests start their own services (redis-server, the UCX object server) on
# loopback and stop them; nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings denied)" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== main job, quick mode (benchmarks end to end)" >&2
bash scripts/run-local.sh --quick --no-setup --out target/ci-quick
echo "== fuzz pass (bounded: 15 s per target; longer: bash scripts/fuzz.sh SECONDS)" >&2
bash scripts/fuzz.sh 15
echo "== cargo test" >&2
log=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (the last binary alone may hold no test).
awk '/^test result:/ {p += $4; f += $6; i += $8}
     END {printf "tests: %d passed, %d failed, %d skipped\n", p, f, i}' "$log"
rm -f "$log"
exit "$rc"
