#!/usr/bin/env bash
# Set up a fresh Debian 12 machine and run the main job locally.
#   bash scripts/run-local.sh
# Until the MPI benchmark lands, the main job is the two-process example: a
# producer sends proxies (not data) to a consumer process that resolves them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --release --locked -p proxy-core --example two_process
