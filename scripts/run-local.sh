#!/usr/bin/env bash
# The main job: set up a Debian 12 machine (as root) and run the benchmarks
# locally, side by side with the Python ProxyStore, then print the tables and
# where the CSV files and the chart are.
#
#   bash scripts/run-local.sh [--quick] [--no-setup] [--no-python]
#                             [--ranks N] [--connectors file,...] [--out DIR]
#                             [--sizes 1KB,1MB,...]
#
#   --quick       smoke run (< 2 minutes): fewer sizes and repetitions
#   --no-setup    skip scripts/setup.sh (packages already installed)
#   --no-python   skip the Python ProxyStore reference (benches/python)
#   --ranks N     MPI ranks (default 2: this machine has 2 cores)
#   --connectors  connectors to benchmark (default: file,redis,ucx, and margo
#                 when Margo is found: MARGO_DIR set or pkg-config margo; add ofi
#                 for the libfabric connector, FI_PROVIDER=shm unless set; margo
#                 uses PROXYSTORE_MARGO_PROTOCOL, na+sm unless set)
#   --out DIR     results directory (default results/<timestamp>)
#   --sizes LIST  object sizes of the store-level benchmark and of the Python
#                 reference (e.g. 1KB,1MB,100MB; default: the quick or full set)
#
# Everything this script starts (redis-server, one object server that serves
# the ucx, ofi and margo connectors asked for: `proxystore-server --transports
# ucx,ofi,margo`, 6 GiB) is stopped by PID when it ends, also on Ctrl-C.
# Binaries go to cargo's target directory ($CARGO_TARGET_DIR when set); the
# Python reference's virtual environment (pinned ProxyStore 1.1.0, made on
# first use from PyPI) to <target dir>/python-ref-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 setup=1 python=1 ranks=2 connectors="" out="" sizes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-setup) setup=0 ;;
    --no-python) python=0 ;;
    --ranks) ranks=$2; shift ;;
    --connectors) connectors=$2; shift ;;
    --out) out=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run-local: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

[ "$setup" = 1 ] && bash scripts/setup.sh
out=${out:-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)   # absolute: servers change their working directory
if [ -z "$connectors" ]; then
  connectors=file,redis,ucx
  # Margo is in no package registry: benchmarked when a build of it is found.
  if [ -n "${MARGO_DIR:-}" ] || pkg-config --exists 'margo >= 0.20' 2>/dev/null; then
    connectors+=,margo
  fi
fi
has() { [[ ",$connectors," == *",$1,"* ]]; }
# One node: UCX over shared memory and cross-memory attach (MPICH's ch4:ucx too).
export UCX_TLS=${UCX_TLS:-shm,cma,self}

pids=()
py_redis=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building (release)" >&2
cargo build --release --locked -q -p proxystore-bench -p proxystore-server --bins
# Where cargo put them: honours CARGO_TARGET_DIR and build.target-dir.
target=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bench=$target/release/proxystore-bench
bench_args=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if has redis; then
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no \
    --dir "$out" --logfile "$out/redis.log" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "run-local: redis-server did not start (see $out/redis.log)" >&2; exit 1; }
  echo "== redis-server pid ${pids[-1]} on 127.0.0.1:$port (no persistence)" >&2
  bench_args+=(--redis "127.0.0.1:$port")
  py_redis=(--redis "127.0.0.1:$port")
fi

# One object server (proxystore-server) for every fabric connector asked for:
# the same memory served over UCX, libfabric and Margo at once, at one address.
transports=()
has ucx && transports+=(ucx)
if has ofi; then
  transports+=(ofi)
  # One node: libfabric's shared-memory provider (cross-memory attach).
  export FI_PROVIDER=${FI_PROVIDER:-shm}
fi
if has margo; then
  transports+=(margo)
  # One node: Mercury's shared-memory plugin (bulk pulls by process_vm_readv).
  export PROXYSTORE_MARGO_PROTOCOL=${PROXYSTORE_MARGO_PROTOCOL:-na+sm}
fi
if [ ${#transports[@]} -gt 0 ]; then
  list=$(IFS=,; echo "${transports[*]}")
  log=$out/object-server.log
  "$target/release/proxystore-server" --transports "$list" --listen 127.0.0.1:0 --memory-limit 6G > "$log" 2>&1 &
  pids+=($!)
  # Up to 60 s: with Margo, loading Mercury's plugins loads UCX, which
  # calibrates its clock pinned to one core (seconds on a loaded machine).
  for _ in $(seq 600); do
    grep -q '^LISTEN ' "$log" && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  addr=$(awk '/^LISTEN /{print $2; exit}' "$log")
  [ -n "$addr" ] || { echo "run-local: the object server did not start (see $log)" >&2; exit 1; }
  echo "== object server pid ${pids[-1]} on $addr over $list (UCX_TLS=$UCX_TLS${FI_PROVIDER:+, FI_PROVIDER=$FI_PROVIDER}${PROXYSTORE_MARGO_PROTOCOL:+, PROXYSTORE_MARGO_PROTOCOL=$PROXYSTORE_MARGO_PROTOCOL})" >&2
  for t in "${transports[@]}"; do bench_args+=("--$t-server" "$addr"); done
fi

# (Commas separate values inside one option argument.)
# shellcheck disable=SC2054
if [ "$quick" = 1 ]; then
  store_args=(--quick --payloads bytes --sizes "${sizes:-1KB,1MB,10MB}")
  mpi_args=(--sizes 1KiB,1MiB,64MiB --reps 3 --warmup 1 --alltoall-max 64MiB)
  py_args=(--quick --sizes "${sizes:-1KB,1MB,10MB}")
else
  store_args=(--payloads bytes --series-budget 1.5)
  mpi_args=(--sizes 1KiB,64KiB,1MiB,16MiB,256MiB,1GiB --reps 7 --warmup 2)
  py_args=(--series-budget 1.5)
fi
if [ "$quick" = 0 ] && [ -n "$sizes" ]; then
  store_args+=(--sizes "$sizes")
  py_args+=(--sizes "$sizes")
fi

py_csv=""
if [ "$python" = 1 ]; then
  echo "== Python ProxyStore reference (benches/python, ProxyStore 1.1.0)" >&2
  py_conns="file"
  has redis && py_conns=file,redis
  py_csv=$out/python.csv
  if ! PROXYSTORE_PY_VENV=${PROXYSTORE_PY_VENV:-$target/python-ref-venv} \
      bash benches/python/run.sh --connectors "$py_conns" --payloads bytes \
      "${py_args[@]}" "${py_redis[@]}" --csv "$py_csv" > "$out/python.md"; then
    echo "run-local: the Python reference failed (see above and $out/python.md); continuing without it" >&2
    py_csv=""
  fi
fi

echo "== store-level benchmark (same schema as the Python reference)" >&2
"$bench" store --connectors "local,$connectors" "${store_args[@]}" "${bench_args[@]}" --csv "$out/store.csv" | tee "$out/store.md"

echo "== MPI benchmark: mpiexec -n $ranks" >&2
compare=()
[ -n "$py_csv" ] && compare=(--compare "$py_csv")
mpiexec.mpich -n "$ranks" "$bench" mpi --connectors "$connectors" "${mpi_args[@]}" "${bench_args[@]}" --out "$out" "${compare[@]}"

if [ -n "$py_csv" ]; then
  echo "== side by side with the Python ProxyStore (medians)" >&2
  python3 benches/python/compare.py "$py_csv" "$out/store.csv" --section proxystore --payload bytes \
    --op put,get,child_resolve --wide | tee "$out/compare.md"
fi

echo >&2
echo "results in $out:" >&2
ls -1 "$out" | sed 's/^/  /' >&2
