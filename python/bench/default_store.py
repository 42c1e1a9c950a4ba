"""A NumPy array proxied with ProxyStore's *default* Store settings and
resolved in another (already running) Python process: upstream's
FileConnector on /dev/shm vs our connectors.

    python default_store.py --ucx-server HOST:PORT [--size 100000000] [--reps 7]

Every row uses ``Store(name, connector)`` with the default serializer and
deserializer; only the connector differs. The child times ``extract(proxy)``
(factory, connector get, deserialize) and touching one element per 4 KiB
page, and reports whether the resolved array is a copy or a view of the
connector's memory (importing ``proxystore_rs``, which every proxy of our
connectors does, installs a default deserializer that resolves NumPy arrays
from our connectors in place: ``proxystore_rs._zero_copy``). Prints a Markdown
table of median times and the speed-up over upstream's FileConnector.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import uuid
from typing import Any, Callable

CHILD = r'''
import pickle, struct, sys, time
import numpy
from proxystore.proxy import extract
inp, out = sys.stdin.buffer, sys.stdout.buffer
while inp.peek(1):
    p = pickle.load(inp)
    t0 = time.perf_counter()
    arr = extract(p)
    flat = arr.reshape(-1)
    float(flat[::max(1, 4096 // arr.itemsize)].sum())  # touch every page
    t1 = time.perf_counter()
    # A view of the connector's memory: the array's bases end in a
    # memoryview of a proxystore_rs Buffer.
    b = arr
    while getattr(b, 'base', None) is not None:
        b = b.base
    view = type(getattr(b, 'obj', None)).__name__ == 'Buffer'
    out.write(struct.pack('<dQ?', t1 - t0, arr.nbytes, view))
    out.flush()
'''


def measure(connectors: dict[str, Callable[[], Any]], size: int, reps: int
            ) -> dict[str, tuple[float, bool]]:
    """Median child resolve time per connector and whether it was a view."""
    import numpy
    from proxystore.store import Store

    env = dict(os.environ)
    env.setdefault('UCX_TLS', 'shm,cma,self')
    child = subprocess.Popen([sys.executable, '-c', CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    arr = numpy.random.default_rng(1).random(size // 8)
    out: dict[str, tuple[float, bool]] = {}
    try:
        # Interleaved: one proxy per connector per round, so a busy moment of
        # the machine hits every row alike.
        stores = {name: Store(f'bench-default-{uuid.uuid4().hex[:6]}', make(), register=True)
                  for name, make in connectors.items()}
        times: dict[str, list[float]] = {n: [] for n in stores}
        views: dict[str, bool] = {}
        for _ in range(reps):
            for name, store in stores.items():
                pickle.dump(store.proxy(arr, evict=True), child.stdin)
                child.stdin.flush()
                t, n, view = struct.unpack('<dQ?', child.stdout.read(17))
                assert n == arr.nbytes, (name, n)
                times[name].append(t)
                views[name] = view
        for name, store in stores.items():
            out[name] = (statistics.median(times[name]), views[name])
            store.close()
    finally:
        child.stdin.close()
        child.wait(60)
    return out


def fmt(s: float) -> str:
    return f'{s * 1e6:.0f} µs' if s < 1e-3 else f'{s * 1e3:.2f} ms'


def main() -> None:
    from proxystore.connectors.file import FileConnector as UpstreamFile

    from proxystore_rs import FileConnector, UcxConnector

    ap = argparse.ArgumentParser()
    ap.add_argument('--ucx-server', required=True)
    ap.add_argument('--size', type=int, default=100_000_000)
    ap.add_argument('--reps', type=int, default=7)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(dir='/dev/shm')
    try:
        rows = measure({
            'upstream FileConnector (/dev/shm)': lambda: UpstreamFile(f'{tmp}/upstream'),
            'proxystore_rs FileConnector (/dev/shm)': lambda: FileConnector(f'{tmp}/rs'),
            'proxystore_rs UcxConnector': lambda: UcxConnector(args.ucx_server),
        }, args.size, args.reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows['upstream FileConnector (/dev/shm)'][0]
    print(f'{args.size:,} B NumPy float64 array, default Store settings, median of {args.reps}\n')
    print('| connector | child resolve | resolved array | vs upstream file |')
    print('|---|---:|---|---:|')
    for name, (t, view) in rows.items():
        print(f'| {name} | {fmt(t)} | {"view" if view else "copy"} | {base / t:.1f}x |')


if __name__ == '__main__':
    main()
