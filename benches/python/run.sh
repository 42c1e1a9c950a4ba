#!/usr/bin/env bash
# The Python ProxyStore reference: run bench_store.py in its own virtual
# environment, made on first use from requirements.txt (pinned ProxyStore
# 1.1.0; needs python3 with venv and access to PyPI once, ~1 minute) and
# remade when requirements.txt changes.
#
#   bash benches/python/run.sh [bench_store.py options]    (see --help)
#
# The environment lives in $PROXYSTORE_PY_VENV, default
# <cargo target dir>/python-ref-venv ($CARGO_TARGET_DIR or ./target).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$(pwd)/$target ;; esac
venv=${PROXYSTORE_PY_VENV:-$target/python-ref-venv}
req=$here/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "python-ref: creating $venv from benches/python/requirements.txt" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv --clear "$venv" || {
    echo "python-ref: 'python3 -m venv' failed (Debian: apt-get install -y python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" || {
    echo "python-ref: pip install failed (PyPI must be reachable the first time)" >&2
    exit 1
  }
  echo "$want" > "$venv/.requirements.sha256"
fi
exec "$venv/bin/python" "$here/bench_store.py" "$@"
