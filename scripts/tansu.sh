#!/usr/bin/env bash
# A Kafka-compatible broker for the Kafka stream tests and benchmarks: tansu
# 0.6.0 (Rust, Apache-2.0) from crates.io with its in-memory storage engine
# (feature dynostore), installed once with `cargo install` (a debug build:
# about 10 minutes on 2 cores, a 460 MB binary) under
# ${TANSU_ROOT:-~/.cache/proxystore-rs/tansu-0.6.0}. Prints the binary's path.
#   export TANSU=$(bash scripts/tansu.sh)
# (Apache Kafka itself comes from Maven and Apache mirrors; tansu needs only
# crates.io.)
set -euo pipefail
root=${TANSU_ROOT:-$HOME/.cache/proxystore-rs/tansu-0.6.0}
bin=$root/bin/tansu
if [ ! -x "$bin" ]; then
  echo "tansu: cargo install --locked --debug --features dynostore tansu@0.6.0 into $root" >&2
  nice cargo install --quiet --locked --debug --features dynostore --root "$root" tansu@0.6.0 >&2
fi
"$bin" --version > /dev/null
echo "$bin"
