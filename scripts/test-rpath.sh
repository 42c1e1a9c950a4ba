#!/usr/bin/env bash
# Binaries built against a UCX outside the system directories (UCX_DIR) run
# against that UCX, not the system's: proxystore-server and libproxystore.so
# carry its lib/ as their run path (readelf -d), and once running, libucp is
# mapped from there (/proc/PID/maps of a serving proxystore-server, and of a
# C program that round-trips an object through it with libproxystore.so).
#   UCX_DIR=$(bash scripts/ucx-wheel.sh) CARGO_TARGET_DIR=target/ucx-dir bash scripts/test-rpath.sh
#   ... bash scripts/test-rpath.sh --no-build     (check binaries already built)
# Prints cargo-style `test ...` and `test result:` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
case "${1:-}" in
  "") ;;
  --no-build) build=0 ;;
  *) echo "usage: UCX_DIR=PREFIX bash scripts/test-rpath.sh [--no-build]" >&2; exit 2 ;;
esac
if [ -z "${UCX_DIR:-}" ] || [ ! -d "$UCX_DIR/lib" ]; then
  echo "test-rpath: set UCX_DIR to a UCX prefix with lib/ (e.g. UCX_DIR=\$(bash scripts/ucx-wheel.sh))" >&2
  exit 2
fi
ucx_lib=$(realpath "$UCX_DIR/lib")
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
out="$tgt/rpath-test"
rm -rf "$out" && mkdir -p "$out"
server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
# Nothing may steer the loader but the run paths under test.
unset LD_LIBRARY_PATH LD_PRELOAD
export UCX_TLS=${UCX_TLS:-shm,cma,self} UCX_WARN_UNUSED_ENV_VARS=n

if [ "$build" -eq 1 ]; then
  echo "== build proxystore-server and libproxystore.so against UCX_DIR=$UCX_DIR" >&2
  cargo build --locked -q -p proxystore-server -p proxystore-capi
fi
server="$tgt/debug/proxystore-server"
capi="$tgt/debug/libproxystore.so"

passed=0 failed=0
result() { # name status
  if [ "$2" -eq 0 ]; then echo "test $1 ... ok"; passed=$((passed + 1))
  else echo "test $1 ... FAILED"; failed=$((failed + 1)); fi
}
# The RUNPATH (or RPATH) entries of an ELF file, one a line.
run_paths() { readelf -d "$1" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' | tr ':' '\n'; }
has_run_path() { # name file
  local p ok=1
  while read -r p; do
    [ -n "$p" ] && [ "$(realpath -m "$p")" = "$ucx_lib" ] && ok=0
  done < <(run_paths "$2")
  [ $ok -eq 0 ] || echo "--- $2 has run path [$(run_paths "$2" | paste -sd:)], not $ucx_lib" >&2
  result "$1" $ok
}
from_ucx_dir() { # name path-of-the-mapped-libucp
  local ok=1
  case "$2" in "$ucx_lib"/libucp.so*) ok=0 ;; esac
  [ $ok -eq 0 ] || echo "--- libucp mapped from '${2:-nowhere}', not $ucx_lib" >&2
  result "$1" $ok
}

has_run_path rpath::server_run_path_is_ucx_dir "$server"
has_run_path rpath::capi_run_path_is_ucx_dir "$capi"

echo "== proxystore-server serving over UCX" >&2
"$server" --transports ucx --listen 127.0.0.1:0 --idle-exit 120 > "$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q '^LISTEN ' "$out/server.log" && break; sleep 0.1; done
addr=$(awk '/^LISTEN /{print $2; exit}' "$out/server.log")
mapped=""
if [ -n "$addr" ]; then
  mapped=$(awk '$6 ~ /\/libucp\.so/ {print $6; exit}' "/proc/$server_pid/maps")
else
  cat "$out/server.log" >&2
fi
echo "proxystore-server (pid $server_pid, $addr): libucp from $mapped" >&2
from_ucx_dir rpath::server_runs_against_ucx_dir "$mapped"

echo "== a C program on libproxystore.so, through that server" >&2
mapped=""
# The program needs the library by its SONAME (libproxystore.so.0.2), which
# only an install creates: link it here under both names.
soname=$(readelf -d "$capi" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
mkdir -p "$out/lib"
ln -sf "$(realpath "$capi")" "$out/lib/libproxystore.so"
[ -z "$soname" ] || ln -sf "$(realpath "$capi")" "$out/lib/$soname"
if cc -std=c11 -Wall -Wextra -Werror -Icapi/include capi/tests/c/loaded_ucx.c \
    -o "$out/loaded_ucx" -L"$out/lib" -lproxystore -Wl,-rpath,"$out/lib" 2> "$out/cc.log" \
  && [ -n "$addr" ] && "$out/loaded_ucx" "ucx://$addr" > "$out/loaded_ucx.log" 2>&1; then
  mapped=$(awk '/^LIBUCP /{print $2; exit}' "$out/loaded_ucx.log")
else
  cat "$out/cc.log" "$out/loaded_ucx.log" 2>/dev/null >&2 || true
fi
echo "loaded_ucx: libucp from $mapped" >&2
from_ucx_dir rpath::capi_runs_against_ucx_dir "$mapped"

printf '\ntest result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out\n\n' \
  "$([ $failed -eq 0 ] && echo ok || echo FAILED)" "$passed" "$failed"
[ $failed -eq 0 ]
