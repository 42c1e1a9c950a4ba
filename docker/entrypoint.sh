#!/usr/bin/env bash
# The image's entry point: run proxystore-rs's tests and a quick benchmark
# over shared memory and TCP and, when the container sees an RDMA device
# (InfiniBand, RoCE, or a soft-RoCE `rxe` link made on the host), the UCX and
# libfabric connectors' conformance and fault tests over verbs. Prints which
# steps ran and which were skipped, and why; exits non-zero if a step failed.
#
#   docker run --rm --shm-size=4g --cap-add SYS_PTRACE IMAGE      # shm + tcp
#   docker run --rm --shm-size=4g --cap-add SYS_PTRACE --network host \
#       --ulimit memlock=-1 --cap-add IPC_LOCK --device /dev/infiniband \
#       -v "$PWD/out:/results" IMAGE                                 # + verbs
#
# SYS_PTRACE: Docker's default seccomp profile refuses process_vm_readv
# (cross-memory attach, CMA) without it, and libfabric's shm provider needs
# CMA for one-sided reads that do not wait for the server (without it the
# libfabric shm fault tests fail).
#
# Environment:
#   RESULTS_DIR          where the benchmark CSV files go (default /results)
#   RUN_TESTS=0          skip the shm/tcp test suite
#   RUN_BENCH=0          skip the benchmarks
#   UCX_VERBS_TLS        UCX transports of the verbs tests (default rc_verbs,ud_verbs,self)
#   OFI_VERBS_PROVIDER   libfabric provider of the verbs tests (default verbs;ofi_rxm)
#   REQUIRE_RDMA=1       fail (instead of skipping the verbs steps) without a device
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

results=${RESULTS_DIR:-/results}
ucx_verbs_tls=${UCX_VERBS_TLS:-rc_verbs,ud_verbs,self}
ofi_verbs_provider=${OFI_VERBS_PROVIDER:-verbs;ofi_rxm}
export CARGO_TERM_COLOR=never

summary=()   # one line per step: "ran ... ok|FAILED" or "skipped ...: reason"
failed=0
note() { summary+=("$1"); }

# Run a step: name, then the command. Its outcome goes to the summary.
step() {
  local name=$1
  shift
  echo "== $name" >&2
  if "$@"; then
    note "ran      $name: ok"
  else
    note "ran      $name: FAILED (exit $?)"
    failed=1
  fi
}

# Tally of the `test result:` lines a cargo test run printed (from its log).
tally() {
  awk '/^test result:/ {p += $4; f += $6; i += $8}
       END {printf "%d passed, %d failed, %d ignored", p, f, i}' "$1"
}

# cargo test with its log kept, so the summary can count the tests.
# (Called through `step`, which shellcheck does not follow.)
# shellcheck disable=SC2317
cargo_test() {
  local log=$1
  shift
  cargo test --locked "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# --- the RDMA device ----------------------------------------------------------
rdma_devices=()
if [ -d /sys/class/infiniband ]; then
  for d in /sys/class/infiniband/*; do
    [ -e "$d" ] && rdma_devices+=("$(basename "$d")")
  done
fi
if [ ${#rdma_devices[@]} -eq 0 ] && command -v ibv_devices >/dev/null 2>&1; then
  # /sys/class/infiniband may be hidden while the verbs library still sees a device.
  while read -r dev _; do
    [ -n "$dev" ] && rdma_devices+=("$dev")
  done < <(ibv_devices 2>/dev/null | awk 'NR > 2 {print $1}')
fi
echo "== RDMA" >&2
if [ ${#rdma_devices[@]} -gt 0 ]; then
  echo "RDMA devices: ${rdma_devices[*]}" >&2
  rdma link show >&2 2>&1 || true
  ibv_devices >&2 2>&1 || true
  if [ ! -e /dev/infiniband/uverbs0 ]; then
    echo "warning: /dev/infiniband/uverbs0 is missing: run the container with --device /dev/infiniband" >&2
  fi
  if [ "$(ulimit -l)" != unlimited ]; then
    echo "warning: locked memory is limited to $(ulimit -l) KiB: verbs memory registration needs --ulimit memlock=-1" >&2
  fi
  no_rdma=""
else
  # Why there is none, as precisely as this container can tell.
  if [ ! -d /sys/class/infiniband ]; then
    no_rdma="no RDMA device (/sys/class/infiniband does not exist: the kernel has no RDMA core loaded)"
  else
    no_rdma="no RDMA device (/sys/class/infiniband is empty and ibv_devices lists none)"
  fi
  echo "$no_rdma" >&2
  echo "(on the host: modprobe rdma_rxe && rdma link add rxe0 type rxe netdev IF; then run with --device /dev/infiniband --network host --ulimit memlock=-1 --cap-add IPC_LOCK)" >&2
fi
# Cross-memory attach: process_vm_readv of our own memory (a seccomp filter
# that refuses it refuses it for every process).
if ! python3 - <<'PY' 2>/dev/null; then
import ctypes, sys
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
src, dst = ctypes.create_string_buffer(b"cma", 4), ctypes.create_string_buffer(4)
n = libc.process_vm_readv(libc.getpid(), ctypes.byref(Iov(ctypes.addressof(dst), 4)), 1,
                          ctypes.byref(Iov(ctypes.addressof(src), 4)), 1, 0)
sys.exit(0 if n == 4 and dst.value == b"cma" else 1)
PY
  echo "warning: process_vm_readv (cross-memory attach) is refused here: libfabric's shm provider needs it (docker run --cap-add SYS_PTRACE)" >&2
fi
shm_kib=$(df -k --output=size /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
if [ "${shm_kib:-0}" -lt $((1024 * 1024)) ]; then
  echo "warning: /dev/shm is only ${shm_kib:-?} KiB: shared-memory tests need more (docker run --shm-size=4g)" >&2
fi

# --- shm and tcp: the test suite ---------------------------------------------------
if [ "${RUN_TESTS:-1}" = 0 ]; then
  note "skipped  test suite (shm, tcp): RUN_TESTS=0"
else
  log=$(mktemp)
  # The verbs tests are among the ignored ones here; they run below.
  step "test suite (cargo test --workspace: shm, tcp)" cargo_test "$log" --workspace --no-fail-fast
  summary[-1]+=" ($(tally "$log"))"
  rm -f "$log"
fi

# --- shm and tcp: the benchmark ------------------------------------------------
if [ "${RUN_BENCH:-1}" = 0 ]; then
  note "skipped  benchmark (shm, tcp): RUN_BENCH=0"
else
  mkdir -p "$results"
  step "benchmark (run-local.sh --quick: file, redis, ucx shm; CSV in $results/bench)" \
    bash scripts/run-local.sh --quick --no-setup --no-python --out "$results/bench"
fi

# --- verbs ---------------------------------------------------------------------
verbs_steps=(
  "UCX conformance suite over verbs (UCX_TLS=$ucx_verbs_tls)"
  "UCX fault tests over verbs (UCX_TLS=$ucx_verbs_tls)"
  "libfabric conformance suite over verbs (FI_PROVIDER=$ofi_verbs_provider)"
  "libfabric fault tests over verbs (FI_PROVIDER=$ofi_verbs_provider)"
  "benchmark over verbs (ucx, ofi)"
)
if [ -n "$no_rdma" ]; then
  for s in "${verbs_steps[@]}"; do
    note "skipped  $s: $no_rdma"
  done
  if [ "${REQUIRE_RDMA:-0}" = 1 ]; then
    note "FAILED   REQUIRE_RDMA=1 but $no_rdma"
    failed=1
  fi
else
  export PROXYSTORE_TEST_UCX_VERBS_TLS=$ucx_verbs_tls
  export PROXYSTORE_TEST_OFI_VERBS_PROVIDER=$ofi_verbs_provider
  echo "== libfabric providers over verbs: fi_info -p verbs" >&2
  fi_info -p verbs -t FI_EP_RDM 2>&1 | grep -E "provider|domain|fabric" | sort -u >&2 || true
  echo "== UCX devices: ucx_info -d (verbs)" >&2
  ucx_info -d 2>/dev/null | grep -E "Transport: (rc_verbs|ud_verbs)|Device: " | sort -u >&2 || true
  # The verbs tests are ignored by default (no device in CI); run only them:
  # the conformance binaries' cases (not the opt-in huge_object), and the
  # transport tests' `verbs` module.
  log=$(mktemp)
  step "${verbs_steps[0]}" cargo_test "$log" -p ucx-connector --test conformance_verbs -- \
    --ignored --skip huge_object --skip conformance_child_entry
  summary[-1]+=" ($(tally "$log"))"
  step "${verbs_steps[1]}" cargo_test "$log" -p ucx-connector --test transports -- --ignored verbs::
  summary[-1]+=" ($(tally "$log"))"
  step "${verbs_steps[2]}" cargo_test "$log" -p ofi-connector --test conformance_verbs -- \
    --ignored --skip huge_object --skip conformance_child_entry
  summary[-1]+=" ($(tally "$log"))"
  step "${verbs_steps[3]}" cargo_test "$log" -p ofi-connector --test transports -- --ignored verbs::
  summary[-1]+=" ($(tally "$log"))"
  rm -f "$log"
  if [ "${RUN_BENCH:-1}" = 0 ]; then
    note "skipped  ${verbs_steps[4]}: RUN_BENCH=0"
  else
    step "${verbs_steps[4]} (CSV in $results/bench-verbs)" \
      env UCX_TLS="$ucx_verbs_tls" FI_PROVIDER="$ofi_verbs_provider" \
      bash scripts/run-local.sh --quick --no-setup --no-python --connectors ucx,ofi \
      --out "$results/bench-verbs"
  fi
fi

echo "== summary" >&2
printf '%s\n' "${summary[@]}"
exit "$failed"
