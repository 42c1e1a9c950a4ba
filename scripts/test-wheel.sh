#!/usr/bin/env bash
# The Python wheel as a user installs it: `pip install` of the wheel maturin
# built (scripts/test-python.sh builds it into $CARGO_TARGET_DIR/wheels; built
# here when missing) into a fresh venv of the system's Python (3.11 on Debian
# 12), its dependencies from PyPI. Then:
# - it imports, opens every scheme's parser, and a NumPy array proxied through
#   a default `Store` over our file connector resolves in a child process as a
#   view (no copy);
# - with the system's UCX hidden (a private mount namespace in which
#   libucp.so.0 is an empty file; needs root, else skipped), the import fails
#   with the message that says what to install, not a bare loader error;
#   with the libucx wheel (pip install libucx-cu12) installed, the same import
#   loads that UCX instead.
#   bash scripts/test-wheel.sh
# Prints cargo-style `test ...` and `test result:` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
wheels="$tgt/wheels"
work=$(mktemp -d /tmp/ps-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! compgen -G "$wheels/proxystore_rs-*.whl" > /dev/null; then
  echo "== wheel: building it (maturin from PyPI)" >&2
  python3 -m venv "$work/build"
  "$work/build/bin/pip" install -q --disable-pip-version-check 'maturin>=1.5,<2'
  "$work/build/bin/maturin" build --release --locked -q --auditwheel skip \
    -m python/Cargo.toml -i python3 -o "$wheels"
fi
wheel=$(compgen -G "$wheels/proxystore_rs-*.whl" | head -n 1)

passed=0 failed=0 ignored=0
result() { # name status
  if [ "$2" -eq 0 ]; then echo "test $1 ... ok"; passed=$((passed + 1))
  else echo "test $1 ... FAILED"; failed=$((failed + 1)); fi
}

echo "== wheel: pip install $(basename "$wheel") into a fresh venv ($(python3 --version))" >&2
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
set +e
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" numpy > "$work/pip.log" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || cat "$work/pip.log" >&2
result wheel::pip_installs_into_a_fresh_venv $rc

set +e
PS_DIR="$work/store" "$py" - > "$work/use.log" 2>&1 <<'PY'
import os, pickle, subprocess, sys
import numpy
import proxystore_rs
from proxystore.store import Store
assert {'file', 'redis', 'ucx', 'ofi', 'margo', 'daos'} <= set(proxystore_rs.schemes())
store = Store('wheel', proxystore_rs.FileConnector(os.environ['PS_DIR']), register=True)
arr = numpy.arange(1 << 20, dtype=numpy.float64)
p = store.proxy(arr)
child = subprocess.run([sys.executable, '-c', '''
import pickle, sys
from proxystore.proxy import extract
a = extract(pickle.loads(sys.stdin.buffer.read()))
print(float(a.sum()), a.flags.owndata, a.__array_interface__["data"][0] % 64)
'''], input=pickle.dumps(p), capture_output=True, check=True)
assert child.stdout.split() == [str(float(arr.sum())).encode(), b'False', b'0'], child.stdout
store.close()
print('resolved in a child process as an aligned view')
PY
rc=$?
set -e
[ $rc -eq 0 ] || cat "$work/use.log" >&2
result wheel::imports_and_resolves_zero_copy $rc

native=$(compgen -G "$work/venv/lib/python3*/site-packages/proxystore_rs/_native*.so" | head -n 1)
libucp=$(ldd "$native" | awk '/libucp\.so/ {print $3; exit}')
if [ "$(id -u)" -ne 0 ] || [ -z "$libucp" ]; then
  echo "test wheel::missing_ucx_is_a_clear_error ... ignored, needs root (a private mount namespace) and a linked libucp"
  ignored=$((ignored + 1))
else
  set +e
  # shellcheck disable=SC2016  # expanded by the inner sh
  out=$(unshare -m sh -c 'mount --bind /dev/null "$1" && exec "$2" -c "import proxystore_rs"' \
    sh "$libucp" "$py" 2>&1)
  code=$?
  set -e
  echo "$out" | tail -n 1 >&2
  if [ $code -ne 0 ] && grep -q "needs the UCX libraries" <<<"$out" && grep -q "apt-get install libucx0" <<<"$out" \
    && grep -q "pip install libucx-cu12" <<<"$out"; then
    result wheel::missing_ucx_is_a_clear_error 0
  else
    echo "$out" >&2
    result wheel::missing_ucx_is_a_clear_error 1
  fi
fi

# The libucx wheel (what UCX-Py and UCXX use) stands in for a missing system
# UCX: with libucp.so.0 hidden again, the import loads the wheel's UCX. (Its
# version must match the one the wheel was built against for UCX stores to
# open; the import itself only needs the libraries.)
if [ "$(id -u)" -eq 0 ] && [ -n "$libucp" ]; then
  set +e
  "$work/venv/bin/pip" install -q --disable-pip-version-check "libucx-cu12==${UCX_WHEEL_VERSION:-1.22.0}" \
    > "$work/pip-libucx.log" 2>&1
  rc=$?
  # shellcheck disable=SC2016  # expanded by the inner sh
  out=$(unshare -m sh -c 'mount --bind /dev/null "$1" && exec "$2" -c "$3"' sh "$libucp" "$py" '
import os, proxystore_rs, libucx
lib = os.path.join(os.path.dirname(libucx.__file__), "lib")
maps = open("/proc/self/maps").read()
assert lib in maps and "libucp.so" in maps, maps
print("UCX from", lib)' 2>&1)
  code=$?
  set -e
  [ $rc -ne 0 ] || rc=$code
  echo "$out" | tail -n 1 >&2
  [ $rc -eq 0 ] || { cat "$work/pip-libucx.log"; echo "$out"; } >&2
  result wheel::libucx_wheel_stands_in_for_the_system_ucx $rc
fi

printf '\ntest result: %s. %d passed; %d failed; %d ignored; 0 measured; 0 filtered out\n\n' \
  "$([ $failed -eq 0 ] && echo ok || echo FAILED)" "$passed" "$failed" "$ignored"
[ $failed -eq 0 ]
