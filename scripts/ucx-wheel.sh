#!/usr/bin/env bash
# Fetch a current UCX from PyPI: the `libucx-cu12` wheel carries a complete
# UCX prefix (headers, libraries, pkg-config files, transport modules,
# ucx_info, ucx_perftest). Unpacks it under target/ (outside the sources,
# ignored by git) and prints the prefix, for UCX_DIR:
#
#   UCX_DIR=$(bash scripts/ucx-wheel.sh) CARGO_TARGET_DIR=target/ucx-wheel cargo test -p ucx-connector
#   UCX_DIR=$(bash scripts/ucx-wheel.sh) bash scripts/ucx-vs-perftest.sh
#
# Binaries built that way carry a run path to the prefix's lib/ (ucx-sys),
# so they load this UCX without LD_LIBRARY_PATH; UCX finds its transport
# modules next to libucs (lib/ucx/). Its CUDA modules do not load without a
# GPU driver, which UCX skips quietly.
# Env: UCX_WHEEL_VERSION (default 1.22.0), UCX_WHEEL_DIR (default
# <target dir>/ucx-wheel-<version>). A finished unpack is reused.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
version="${UCX_WHEEL_VERSION:-1.22.0}"
dir="${UCX_WHEEL_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/ucx-wheel-$version}"
prefix="$dir/libucx"
if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/download"
    echo "ucx-wheel: downloading libucx-cu12==$version from PyPI" >&2
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$dir/download" "libucx-cu12==$version" >&2
    # A wheel is a zip file; keep the executable bits (ucx_info, ucx_perftest).
    python3 - "$dir" "$dir"/download/*.whl <<'PY'
import os, sys, zipfile
dest, wheel = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
    if [ ! -f "$prefix/include/ucp/api/ucp.h" ] || [ ! -e "$prefix/lib/libucp.so" ]; then
        echo "ucx-wheel: $prefix is not a UCX prefix (wheel layout changed?)" >&2
        exit 1
    fi
    rm -rf "$dir/download"
    touch "$dir/.done"
fi
echo "ucx-wheel: UCX $(LD_LIBRARY_PATH="$prefix/lib" "$prefix/bin/ucx_info" -v | sed -n "s/^# Library version: //p") in $prefix" >&2
echo "$prefix"
