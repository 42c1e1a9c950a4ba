#!/usr/bin/env bash
# The Python bindings with the real Python ProxyStore 1.1: a venv under
# target/ (proxystore==1.1.0, numpy, redis, pytest, maturin from PyPI), the
# wheel built by maturin from python/ and pip-installed, then pytest
# (python/tests), which starts its own redis-server and UCX object server.
#   bash scripts/test-python.sh [PYTEST_ARGS...]
# Prints the pytest report and a cargo-style `test result:` line.
set -euo pipefail
cd "$(dirname "$0")/.."
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
venv=${PROXYSTORE_TEST_VENV:-$tgt/py-venv}
if [ ! -x "$venv/bin/pytest" ] || [ ! -x "$venv/bin/maturin" ]; then
  echo "== python: creating $venv" >&2
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'proxystore==1.1.0' numpy redis pytest 'maturin>=1.5,<2'
fi
echo "== python: building the proxystore-rs wheel (maturin)" >&2
rm -rf "$tgt/wheels"
"$venv/bin/maturin" build --release --locked -q --auditwheel skip -m python/Cargo.toml -i "$venv/bin/python" -o "$tgt/wheels"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$tgt"/wheels/proxystore_rs-*.whl
# The UCX object server the tests start (built by the workspace's release build).
export PROXYSTORE_UCX_SERVER=${PROXYSTORE_UCX_SERVER:-$tgt/release/proxystore-ucx-server}
# Built (or found up to date) every time: a binary left from another commit
# may speak the same protocol version with another layout.
cargo build --release --locked -q -p ucx-connector --bin proxystore-ucx-server
# The Rust side of test_streams.py (streams-producer, streams-consumer).
export PROXYSTORE_BENCH=${PROXYSTORE_BENCH:-$tgt/release/proxystore-bench}
cargo build --release --locked -q -p proxystore-bench --bin proxystore-bench
# The libfabric object server of test_schemes.py's ofi:// test.
export PROXYSTORE_OFI_SERVER=${PROXYSTORE_OFI_SERVER:-$tgt/release/proxystore-ofi-server}
cargo build --release --locked -q -p ofi-connector --bin proxystore-ofi-server
log=$(mktemp)
set +e
(cd python/tests && "$venv/bin/python" -m pytest -v -p no:cacheprovider "$@") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -cE ' PASSED( |$)' "$log" || true)
failed=$(grep -cE ' (FAILED|ERROR)( |$)' "$log" || true)
rm -f "$log"
printf '\ntest result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out\n\n' \
  "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)" "$passed" "$failed"
exit "$rc"
