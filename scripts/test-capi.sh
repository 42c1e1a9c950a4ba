#!/usr/bin/env bash
# The C ABI from the outside, as a user sees it: install it under a prefix
# (scripts/install-capi.sh), then compile against the installed header and
# pkg-config file and run: the C tests of bad input, the C example under
# `mpiexec -n 2` (mpicc), the C++ RAII example (g++) and the Fortran example
# (gfortran), over a file store and a UCX object server; and every store URL
# scheme of the `proxystore` tool (file, redis, ucx, ofi against real services;
# margo and daos against theirs when PROXYSTORE_MARGO_URL / PROXYSTORE_DAOS_URL
# name one, else a clear error when their library is not installed).
#   bash scripts/test-capi.sh [OUT_DIR]        # default $CARGO_TARGET_DIR/capi (target/capi)
# Prints cargo-style `test ...` and `test result:` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
tgt=${CARGO_TARGET_DIR:-target}
out=$(realpath -m "${1:-$tgt/capi}")
prefix="$out/prefix"
rm -rf "$out" && mkdir -p "$out/bin"
scratch=$(mktemp -d /dev/shm/ps-capi.XXXXXX)
server_pid=""
other_pids=()
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  for p in "${other_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

bash scripts/install-capi.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags proxystore)
libs="$(pkg-config --libs proxystore) -Wl,-rpath,$prefix/lib"
src=capi/examples

passed=0 failed=0 ignored=0
result() { # name status
  if [ "$2" -eq 0 ]; then echo "test $1 ... ok"; passed=$((passed + 1))
  else echo "test $1 ... FAILED"; failed=$((failed + 1)); fi
}
ignore() { # name reason
  echo "test $1 ... ignored, $2"; ignored=$((ignored + 1))
}
run() { # name command...
  local name=$1; shift
  set +e; "$@" > "$out/$name.log" 2>&1; local rc=$?; set -e
  [ $rc -eq 0 ] || { echo "--- $name failed ($rc):"; cat "$out/$name.log"; } >&2
  result "$name" $rc
}

echo "== C ABI: compile against $prefix" >&2
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $cflags capi/tests/c/bad_input.c -o "$out/bin/bad_input" $libs -lpthread
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $cflags capi/tests/c/schemes.c -o "$out/bin/schemes" $libs
# shellcheck disable=SC2086
mpicc -std=c11 -Wall -Wextra -Werror $cflags capi/tests/c/mpi_ranks.c -o "$out/bin/mpi_ranks" $libs
# shellcheck disable=SC2086
mpicc -std=c11 -Wall -Werror $cflags $src/mpi_proxy.c -o "$out/bin/mpi_proxy" $libs
# shellcheck disable=SC2086
g++ -std=c++17 -Wall -Wextra -Werror $cflags -I$src $src/raii.cpp -o "$out/bin/raii" $libs
# shellcheck disable=SC2086
gfortran -Wall -Werror -std=f2018 $cflags $src/fortran_example.f90 -J "$out" -o "$out/bin/fortran_example" $libs
# shellcheck disable=SC2086
mpif90 -Wall -Werror $cflags $src/fortran_mpi.f90 -J "$out" -o "$out/bin/fortran_mpi" $libs
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $cflags capi/tests/c/finalize.c -o "$out/bin/finalize" $libs
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -fsanitize=alignment -fno-sanitize-recover=alignment $cflags \
  capi/tests/c/aligned.c -o "$out/bin/aligned" $libs
# The static library links too (system libraries from the .pc file: split on purpose).
# shellcheck disable=SC2086,SC2046
cc -std=c11 $cflags capi/tests/c/bad_input.c -o "$out/bin/bad_input_static" \
  "$prefix/lib/libproxystore.a" $(pkg-config --static --libs-only-l proxystore | sed 's/-lproxystore//') -lpthread
result capi::builds_with_pkg_config 0

echo "== C ABI: bad input (C tests)" >&2
set +e
"$out/bin/bad_input" "$scratch/bad"
bad_rc=$?
"$out/bin/bad_input_static" "$scratch/bad-static" > "$out/bad_input_static.log" 2>&1
static_rc=$?
set -e
[ $static_rc -eq 0 ] || cat "$out/bad_input_static.log" >&2
result capi::static_library_runs_the_c_tests $static_rc

echo "== C ABI: the installed library and module" >&2
soname=$(readelf -d "$prefix/lib/libproxystore.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
needed=$(readelf -d "$out/bin/finalize" | sed -n 's/.*Shared library: \[\(libproxystore[^]]*\)\].*/\1/p')
minor=$(awk -F'"' '/^version *=/ {split($2, v, "."); print v[1] "." v[2]; exit}' Cargo.toml)
echo "SONAME $soname; programs need $needed" >&2
[ "$soname" = "libproxystore.so.$minor" ] && [ "$needed" = "$soname" ] && [ -e "$prefix/lib/$soname" ]
result capi::soname_is_versioned $?
[ -f "$prefix/include/proxystore.f90" ] && [ -f "$prefix/include/proxystore.mod" ]
result capi::fortran_module_installed $?

echo "== C ABI: 4 MPI ranks (capi/tests/c/mpi_ranks.c)" >&2
mkdir -p "$scratch/ranks"
run capi::mpi_ranks mpiexec -n 4 "$out/bin/mpi_ranks" "$scratch/ranks"

echo "== C ABI: examples over a file store" >&2
run capi::mpi_example_file mpiexec -n 2 "$out/bin/mpi_proxy" "file://$scratch/mpi" 8388608
run capi::cpp_raii_example_file "$out/bin/raii" "file://$scratch/raii"
run capi::fortran_example_file "$out/bin/fortran_example" "file://$scratch/fortran"
run capi::fortran_mpi_example_file mpiexec -n 4 "$out/bin/fortran_mpi" "file://$scratch/fortran-mpi"
# Object data starts on a 64-byte boundary, 1 B .. 64 MiB (capi/tests/c/aligned.c).
run capi::aligned_file "$out/bin/aligned" "file://$scratch/aligned"
# ps_finalize leaves nothing behind: valgrind finds 0 bytes definitely lost.
valgrind_finalize() { # name url
  if ! command -v valgrind > /dev/null; then
    ignore "$1" "needs valgrind (apt-get install valgrind)"
    return
  fi
  local rc
  set +e; valgrind --leak-check=full "$out/bin/finalize" "$2" > "$out/$1.log" 2>&1; rc=$?; set -e
  if [ $rc -eq 0 ] && ! grep -qE 'definitely lost: 0 bytes|All heap blocks were freed' "$out/$1.log"; then
    rc=1
  fi
  [ $rc -eq 0 ] || { echo "--- $1 failed ($rc):"; cat "$out/$1.log"; } >&2
  grep -E 'definitely lost|All heap blocks' "$out/$1.log" >&2 || true
  result "$1" $rc
}
valgrind_finalize capi::finalize_valgrind_file "file://$scratch/finalize"

server="$(realpath -m "$tgt")/release/proxystore-ucx-server"
# Built (or found up to date) every time: a server binary left from another
# commit may speak a protocol of the same version with another slot layout.
cargo build --release --locked -q -p ucx-connector --bin proxystore-ucx-server
export UCX_TLS=${UCX_TLS:-shm,cma,self}
"$server" --listen 127.0.0.1:0 --idle-exit 300 > "$out/ucx-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q '^LISTEN ' "$out/ucx-server.log" && break; sleep 0.1; done
addr=$(awk '/^LISTEN /{print $2; exit}' "$out/ucx-server.log")
if [ -z "$addr" ]; then
  cat "$out/ucx-server.log" >&2
  result capi::ucx_server_started 1
else
  echo "== C ABI: examples over the UCX object server at $addr" >&2
  run capi::mpi_example_ucx mpiexec -n 2 "$out/bin/mpi_proxy" "ucx://$addr" 8388608
  run capi::cpp_raii_example_ucx "$out/bin/raii" "ucx://$addr"
  run capi::fortran_example_ucx "$out/bin/fortran_example" "ucx://$addr"
  run capi::fortran_mpi_example_ucx mpiexec -n 4 "$out/bin/fortran_mpi" "ucx://$addr"
  valgrind_finalize capi::finalize_valgrind_ucx "ucx://$addr"
  run capi::aligned_ucx_mapped "$out/bin/aligned" "ucx://$addr"
  run capi::aligned_ucx_rma "$out/bin/aligned" "ucx://$addr?zero_copy=false"
fi

echo "== C ABI: every store URL scheme" >&2
run capi::scheme_file "$out/bin/schemes" open "file://$scratch/schemes"
if command -v redis-server > /dev/null; then
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$out/redis.log" 2>&1 &
  other_pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$rport" ping > /dev/null 2>&1 && break; sleep 0.1; done
  run capi::scheme_redis "$out/bin/schemes" open "redis://127.0.0.1:$rport/0"
  run capi::aligned_redis "$out/bin/aligned" "redis://127.0.0.1:$rport/0"
else
  ignore capi::scheme_redis "needs redis-server (scripts/setup.sh)"
fi
if [ -n "$addr" ]; then
  run capi::scheme_ucx "$out/bin/schemes" open "ucx://$addr"
else
  ignore capi::scheme_ucx "the UCX object server did not start"
fi
ofi_server="$(realpath -m "$tgt")/release/proxystore-ofi-server"
cargo build --release --locked -q -p ofi-connector --bin proxystore-ofi-server
FI_PROVIDER=${FI_PROVIDER:-shm} "$ofi_server" --listen 127.0.0.1:0 --idle-exit 300 > "$out/ofi-server.log" 2>&1 &
other_pids+=($!)
for _ in $(seq 300); do grep -q '^LISTEN ' "$out/ofi-server.log" && break; sleep 0.1; done
ofi_addr=$(awk '/^LISTEN /{print $2; exit}' "$out/ofi-server.log")
if [ -n "$ofi_addr" ]; then
  run capi::scheme_ofi env FI_PROVIDER="${FI_PROVIDER:-shm}" "$out/bin/schemes" open "ofi://$ofi_addr"
  run capi::aligned_ofi_mapped env FI_PROVIDER="${FI_PROVIDER:-shm}" "$out/bin/aligned" "ofi://$ofi_addr"
  run capi::aligned_ofi_rma env FI_PROVIDER="${FI_PROVIDER:-shm}" "$out/bin/aligned" "ofi://$ofi_addr?zero_copy=false"
else
  cat "$out/ofi-server.log" >&2
  result capi::scheme_ofi 1
fi
# Redis Cluster: three masters of Debian's redis-server, no replicas.
# Each port p needs its cluster bus port p+10000 free and below 65536, so
# ports come from 20000-39999 rather than the ephemeral range.
cluster_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
      echo "$p"; return
    fi
  done
}
if command -v redis-server > /dev/null && command -v redis-cli > /dev/null; then
  cports=()
  for i in 1 2 3; do
    p=$(cluster_port)
    while [[ " ${cports[*]} " == *" $p "* ]]; do p=$(cluster_port); done
    mkdir -p "$out/rc-$i"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --save '' --appendonly no \
      --dir "$out/rc-$i" --cluster-config-file "$out/rc-$i/nodes.conf" > "$out/rc-$i.log" 2>&1 &
    other_pids+=($!)
    cports+=("$p")
  done
  for p in "${cports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.1; done
  done
  if ! redis-cli --cluster create "${cports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
      > "$out/rc-create.log" 2>&1; then
    { echo "--- redis-cli --cluster create failed:"; cat "$out/rc-create.log" "$out"/rc-*.log; } >&2
  fi
  # Every node must agree on all 16384 slots before the test's first put.
  for _ in $(seq 300); do
    check=$(redis-cli --cluster check "127.0.0.1:${cports[0]}" 2>&1 || true)
    grep -q '\[OK\] All 16384 slots covered' <<< "$check" && ! grep -q '\[ERR\]' <<< "$check" && break
    sleep 0.2
  done
  cluster_list=$(printf '127.0.0.1:%s,' "${cports[@]}")
  run capi::scheme_redis_cluster "$out/bin/schemes" open "redis+cluster://${cluster_list%,}"
else
  ignore capi::scheme_redis_cluster "needs redis-server and redis-cli (scripts/setup.sh)"
fi
# ProxyStore endpoints: with none configured for this user, opening one is a
# connector error that says so, never an unknown scheme.
run capi::scheme_endpoint env PROXYSTORE_HOME="$out/no-endpoints" "$out/bin/schemes" absent \
  "endpoint://00000000-0000-4000-8000-000000000000" "no endpoint of"
# Margo and DAOS are loaded at run time: without the library, their URLs must
# fail with a connector error that says what is missing, never "unknown scheme".
runtime_scheme() { # scheme library url-var example-url missing-message
  local url=${!3:-}
  if [ -n "$url" ]; then
    run "capi::scheme_$1" "$out/bin/schemes" open "$url"
  elif ldconfig -p 2>/dev/null | grep -q "lib$2\.so" || [ -n "$(printenv "${2^^}_DIR" || true)" ]; then
    ignore "capi::scheme_$1" "lib$2 is installed: set $3 to a running service to test $1://"
  else
    run "capi::scheme_$1" "$out/bin/schemes" absent "$4" "$5"
  fi
}
# (Margo's client loads Margo when it first needs the fabric, after reaching
# its server: with no server, the error names the server it could not reach.)
runtime_scheme margo margo PROXYSTORE_MARGO_URL "margo://127.0.0.1:1" "Margo is not available|object server 127.0.0.1:1"
runtime_scheme daos daos PROXYSTORE_DAOS_URL "daos://pool/container" "DAOS is not available"

printf '\ntest result: %s. %d passed; %d failed; %d ignored; 0 measured; 0 filtered out\n\n' \
  "$([ $failed -eq 0 ] && echo ok || echo FAILED)" "$passed" "$failed" "$ignored"
[ $failed -eq 0 ] && [ $bad_rc -eq 0 ]
