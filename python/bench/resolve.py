"""A proxy made here, resolved in another (already running) Python process.

Python ProxyStore 1.1 with its own connectors (file, Redis) vs with
proxystore-rs connectors (UCX, file) through ``proxystore_rs``; the same Store,
Proxy and default serializer in every row, only the connector differs.

    python resolve.py --ucx-server HOST:PORT --redis HOST:PORT [--reps N]

Prints a Markdown table of median resolve times (the child's ``extract(proxy)``:
factory, connector get, deserialize, touch every page) per size. Rows ``, view`` use the store
option ``serializer=bytes_serializer, deserializer=view_deserializer``
(``proxystore_rs``): the resolved object is a ``memoryview`` of what the
connector received, so no copy is made after the transfer.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

CHILD = r'''
import pickle, struct, sys, time
import proxystore_rs  # noqa: F401
from proxystore.proxy import extract
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    p = pickle.loads(inp.read(struct.unpack('<I', head)[0]))
    t0 = time.perf_counter()
    obj = extract(p)
    mv = obj if isinstance(obj, memoryview) else memoryview(obj)
    sum(mv[::4096])  # touch every page, as the Rust benchmark's child does
    n = len(mv)
    t1 = time.perf_counter()
    out.write(struct.pack('<dQ', t1 - t0, n)); out.flush()
'''

SIZES = [1_000, 100_000, 1_000_000, 10_000_000, 100_000_000]


def fmt(s: float) -> str:
    return f'{s * 1e6:.0f} µs' if s < 1e-3 else f'{s * 1e3:.2f} ms'


def main() -> None:
    import struct

    from proxystore.connectors.file import FileConnector as PyFile
    from proxystore.connectors.redis import RedisConnector as PyRedis
    from proxystore.store import Store

    from proxystore_rs import FileConnector, UcxConnector, bytes_serializer, view_deserializer

    ap = argparse.ArgumentParser()
    ap.add_argument('--ucx-server', required=True)
    ap.add_argument('--redis', required=True)
    ap.add_argument('--reps', type=int, default=7)
    args = ap.parse_args()
    rhost, rport = args.redis.rsplit(':', 1)
    tmp = tempfile.mkdtemp(dir='/dev/shm')
    connectors = {
        'python file': lambda: PyFile(f'{tmp}/py'),
        'python redis': lambda: PyRedis(rhost, int(rport)),
        'rs file': lambda: FileConnector(f'{tmp}/rs'),
        'rs ucx': lambda: UcxConnector(args.ucx_server),
        'python file, view': lambda: PyFile(f'{tmp}/pyv'),
        'rs ucx, view': lambda: UcxConnector(args.ucx_server),
    }
    child = subprocess.Popen([sys.executable, '-c', CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    rows: dict[str, dict[int, float]] = {}
    for name, make in connectors.items():
        view = name.endswith(', view')
        store = Store(
            f'bench-{uuid.uuid4().hex[:6]}', make(), cache_size=0, register=True,
            serializer=bytes_serializer if view else None,
            deserializer=view_deserializer if view else None,
        )
        rows[name] = {}
        for size in SIZES:
            payload = b'x' * size
            times = []
            for _ in range(args.reps):
                p = store.proxy(payload, evict=True)
                wire = pickle.dumps(p)
                child.stdin.write(struct.pack('<I', len(wire)) + wire)
                child.stdin.flush()
                t, n = struct.unpack('<dQ', child.stdout.read(16))
                assert n == size, (name, n, size)
                times.append(t)
            rows[name][size] = statistics.median(times)
        store.close()
    child.stdin.close()
    child.wait()
    print('| connector | ' + ' | '.join(f'{s:,} B' for s in SIZES) + ' |')
    print('|---|' + '---:|' * len(SIZES))
    for name, r in rows.items():
        print(f'| {name} | ' + ' | '.join(fmt(r[s]) for s in SIZES) + ' |')


if __name__ == '__main__':
    main()
