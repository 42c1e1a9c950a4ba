#!/usr/bin/env bash
# Install what proxystore-rs needs on Debian 12 (run as root; idempotent).
#   bash scripts/setup.sh            # system packages for all crates, tests and benchmarks
# Rust itself (>= 1.85, e.g. from rustup) must already be installed.
set -euo pipefail

packages=(
  build-essential pkg-config libclang-dev   # C shims, bindgen
  libucx-dev ucx-utils                      # UCX connector + ucx_perftest
  libfabric-dev libfabric-bin               # libfabric connector + fi_info
  rdma-core ibverbs-providers ibverbs-utils  # verbs (InfiniBand, RoCE, soft-RoCE rxe): ibv_devices
  iproute2                                   # `rdma link` (docker/entrypoint.sh); ip, tc, bridge (scripts/cluster/)
  nftables util-linux                        # scripts/cluster/: partitions (nft), unshare/nsenter
  redis-server redis-tools                  # Redis connector, baselines
  libzmq3-dev                               # ZeroMQ stream shim (the zmq crate links the system libzmq)
  mpich libmpich-dev                        # MPI-launched benchmarks
  python3 python3-venv python3-pip          # Python ProxyStore: interop tests, benches/python
  python3-dev                               # Python bindings (PyO3, built by maturin)
  g++ gfortran                              # C ABI examples: C++ RAII wrapper, Fortran
  valgrind                                  # C ABI: nothing definitely lost after ps_finalize
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages already installed" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust >= 1.85 (https://rustup.rs) and re-run" >&2
  exit 1
fi
rustc_minor=$(rustc --version | sed -E 's/rustc 1\.([0-9]+).*/\1/')
if [ "${rustc_minor:-0}" -lt 85 ]; then
  echo "setup: $(rustc --version) is too old: proxystore-rs needs Rust >= 1.85 (edition 2024)" >&2
  exit 1
fi
echo "setup: ok ($(rustc --version))" >&2
