#!/usr/bin/env python3
"""Store-level benchmark of the Python ProxyStore, the reference for
`proxystore-bench store` (same operations, repetition plan and CSV schema).

Per connector (file, redis, local), payload (bytes, numpy) and size:

  put            Store.put(obj): serialize + connector put (the key is
                 evicted after each repetition, untimed)
  get            Store.get(key) on a Store(cache_size=0): connector get +
                 deserialize
  proxy_create   Store.proxy(obj, populate_target=False) in this process
  child_resolve  in a consumer process started once: unpickle the proxy,
                 resolve it (the store is found or rebuilt from the proxy's
                 configuration), touch one byte per 4 KiB
  proxy_e2e      this process's clock over proxy_create + pickle + pipe +
                 child_resolve + answer

(local is in-process only: put and get.)

`ray` is Ray's object store, the reference for same-node object sharing
(not a ProxyStore connector): put = ray.put, get = ray.get in this
process, proxy_create = ray.put, child_resolve = ray.get of the reference
+ touch in an actor (another process, started once), proxy_e2e = put +
actor call + answer. NumPy arrays are read in place from Ray's shared
memory; bytes are copied out of it (Ray pickles them).

Sizes are decimal (1KB = 1000 B,
MB/s = 10**6 B/s). Each series runs its warm-up, then timed repetitions
until its maximum or, once it has 5, until --series-budget seconds passed;
it reports the median (and p10, p90, min in the CSV).

Output: a markdown table on stdout, progress on stderr, and with --csv the
long-form CSV of `proxystore-bench store --csv`:
impl,section,connector,payload,size_bytes,op,reps,median_us,p10_us,p90_us,min_us,mb_per_s,extra

Run it through run.sh (which makes the pinned virtual environment).
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

IMPL = 'proxystore-py'
HEADER = ('impl,section,connector,payload,size_bytes,op,reps,median_us,'
          'p10_us,p90_us,min_us,mb_per_s,extra').split(',')
MIN_REPS = 5
CONNECTORS = ('local', 'file', 'redis', 'ray')
PAYLOADS = ('bytes', 'numpy')
OPS = ('put', 'get', 'proxy_create', 'child_resolve', 'proxy_e2e')
now = time.perf_counter


# ---- sizes and statistics (as benches/src/csv.rs and stats.rs) -------------

UNITS = {'': 1, 'b': 1, 'kb': 10**3, 'mb': 10**6, 'gb': 10**9,
         'kib': 2**10, 'mib': 2**20, 'gib': 2**30}


def parse_size(text: str) -> int:
    t = text.strip()
    digits = len(t) - len(t.lstrip('0123456789'))
    unit = t[digits:].lower()
    if digits == 0 or unit not in UNITS:
        raise argparse.ArgumentTypeError(
            f'bad size {text!r} (e.g. 1KB, 10MB, 64MiB)')
    return int(t[:digits]) * UNITS[unit]


def fmt_size(n: int) -> str:
    for unit, m in (('GB', 10**9), ('MB', 10**6), ('KB', 10**3),
                    ('GiB', 2**30), ('MiB', 2**20), ('KiB', 2**10)):
        if n >= m and n % m == 0:
            return f'{n // m}{unit}'
    return f'{n}B'


def fmt_us(us: float) -> str:
    if us < 1e3:
        return f'{us:.0f} µs'
    if us < 1e6:
        return f'{us / 1e3:.2f} ms'
    return f'{us / 1e6:.2f} s'


def percentile(sorted_us: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = q * (len(sorted_us) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(sorted_us) - 1)
    return sorted_us[lo] + (sorted_us[hi] - sorted_us[lo]) * (pos - lo)


def plan(size: int, quick: bool) -> tuple[int, int]:
    """(warm-up runs, maximum timed runs) for a payload size."""
    if quick:
        return 1, MIN_REPS
    for limit, warm, reps in ((10**3, 20, 300), (10**5, 10, 150),
                              (10**6, 5, 60), (10**7, 2, 25),
                              (10**8, 1, 7)):
        if size <= limit:
            return warm, reps
    return 1, MIN_REPS


def series(once, size: int, quick: bool, budget: float) -> list[float]:
    """Run `once()` (returning its own microseconds) by the plan."""
    warm, reps = plan(size, quick)
    for _ in range(warm):
        once()
    out: list[float] = []
    start = now()
    while len(out) < reps:
        out.append(once())
        if len(out) >= MIN_REPS and now() - start > budget:
            break
    return out


@dataclass
class Row:
    connector: str
    payload: str
    size: int
    op: str
    samples: list[float]
    extra: dict[str, object] = field(default_factory=dict)

    def median(self) -> float:
        return percentile(sorted(self.samples), 0.5)

    def csv(self) -> list[str]:
        s = sorted(self.samples)
        med = percentile(s, 0.5)
        return [IMPL, 'proxystore', self.connector, self.payload,
                str(self.size), self.op, str(len(s)), f'{med:.1f}',
                f'{percentile(s, 0.1):.1f}', f'{percentile(s, 0.9):.1f}',
                f'{s[0]:.1f}', f'{self.size / med:.1f}',
                ';'.join(f'{k}={v}' for k, v in self.extra.items())]


# ---- payloads ---------------------------------------------------------------

def make_payload(kind: str, size: int):
    if kind == 'bytes':
        # The byte pattern of proxystore-bench: (i * 7 + 1) mod 256.
        period = bytes((i * 7 + 1) & 0xFF for i in range(256))
        return (period * (size // 256 + 1))[:size]
    import numpy as np
    return np.arange(size // 8, dtype=np.float64)


def touch(obj) -> int:
    """Read one byte per 4 KiB page; returns the object's size in bytes."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        sum(memoryview(obj)[::4096])
        return len(obj)
    import numpy as np
    raw = np.ascontiguousarray(obj).view(np.uint8).reshape(-1)
    int(raw[::4096].sum())
    return raw.size


def expected_bytes(kind: str, size: int) -> int:
    return size if kind == 'bytes' else size // 8 * 8


# ---- the consumer process ---------------------------------------------------

def consumer_main() -> int:
    """Read (length, pickled proxy) frames on stdin; answer (µs, bytes)."""
    from proxystore.proxy import extract

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return 0
        (n,) = struct.unpack('<Q', head)
        wire = inp.read(n)
        t = now()
        obj = extract(pickle.loads(wire))
        size = touch(obj)
        us = (now() - t) * 1e6
        del obj
        out.write(struct.pack('<dQ', us, size))
        out.flush()


class Consumer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--consumer'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def resolve(self, wire: bytes) -> tuple[float, int]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(struct.pack('<Q', len(wire)) + wire)
        self.proc.stdin.flush()
        answer = self.proc.stdout.read(16)
        if len(answer) < 16:
            raise RuntimeError('the consumer process died (see its error above)')
        us, size = struct.unpack('<dQ', answer)
        return us, size

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- Redis --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b'PING\r\n')
            return s.recv(16).startswith(b'+PONG')
    except OSError:
        return False


class OwnRedis:
    """A redis-server of our own on a free loopback port (no persistence),
    stopped by its PID at the end."""

    def __init__(self) -> None:
        exe = shutil.which('redis-server')
        if exe is None:
            sys.exit('bench_store: redis-server not found (Debian: apt-get '
                     'install -y redis-server), or pass --redis HOST:PORT')
        self.dir = tempfile.mkdtemp(prefix='proxystore-py-redis-')
        self.port = free_port()
        self.proc = subprocess.Popen(
            [exe, '--bind', '127.0.0.1', '--port', str(self.port), '--save', '',
             '--appendonly', 'no', '--dir', self.dir],
            stdout=subprocess.DEVNULL)
        for _ in range(100):
            if answers('127.0.0.1', self.port):
                return
            time.sleep(0.05)
        self.stop()
        sys.exit('bench_store: the redis-server it started did not answer')

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the benchmark ------------------------------------------------------------

def make_connector(name: str, args, redis_addr: tuple[str, int]):
    if name == 'local':
        from proxystore.connectors.local import LocalConnector
        return LocalConnector()
    if name == 'file':
        from proxystore.connectors.file import FileConnector
        # clear=False: the consumer rebuilds the connector from its config;
        # this script removes the directory itself.
        return FileConnector(args.file_dir, clear=False)
    if name == 'redis':
        from proxystore.connectors.redis import RedisConnector
        return RedisConnector(redis_addr[0], redis_addr[1])
    raise ValueError(name)


def bench_connector(name: str, args, redis_addr, consumer: Consumer) -> list[Row]:
    from proxystore.proxy import get_factory
    from proxystore.store import Store

    rows: list[Row] = []
    store = Store(f'bench-{name}', make_connector(name, args, redis_addr),
                  cache_size=0, populate_target=False, register=True)
    try:
        for kind in args.payloads:
            for size in args.sizes:
                log(f'{name} {kind} {fmt_size(size)}')
                obj = make_payload(kind, size)
                want = expected_bytes(kind, size)

                def put_once() -> float:
                    t = now()
                    key = store.put(obj)
                    us = (now() - t) * 1e6
                    store.evict(key)
                    return us

                rows.append(Row(name, kind, size, 'put',
                                series(put_once, size, args.quick, args.series_budget)))

                key = store.put(obj)

                def get_once() -> float:
                    t = now()
                    got = store.get(key)
                    us = (now() - t) * 1e6
                    if got is None:
                        raise RuntimeError(f'{name}: object {key} is missing')
                    return us

                rows.append(Row(name, kind, size, 'get',
                                series(get_once, size, args.quick, args.series_budget)))
                store.evict(key)
                if name == 'local':
                    continue

                create: list[float] = []
                child: list[float] = []
                e2e: list[float] = []
                wire_len = 0

                def proxy_once() -> float:
                    nonlocal wire_len
                    t0 = now()
                    p = store.proxy(obj, populate_target=False)
                    t1 = now()
                    wire = pickle.dumps(p)
                    child_us, got = consumer.resolve(wire)
                    t2 = now()
                    if got != want:
                        raise RuntimeError(
                            f'{name}: the consumer got {got} bytes, expected {want}')
                    store.evict(get_factory(p).key)
                    create.append((t1 - t0) * 1e6)
                    child.append(child_us)
                    e2e.append((t2 - t0) * 1e6)
                    wire_len = len(wire)
                    return (t2 - t0) * 1e6

                warm, _ = plan(size, args.quick)
                series(proxy_once, size, args.quick, args.series_budget)
                # The warm-up runs recorded too: drop them.
                del create[:warm], child[:warm], e2e[:warm]
                extra = {'proxy_pickle_bytes': wire_len}
                rows.append(Row(name, kind, size, 'proxy_create', create, extra))
                rows.append(Row(name, kind, size, 'child_resolve', child, extra))
                rows.append(Row(name, kind, size, 'proxy_e2e', e2e, extra))
    finally:
        store.close()
    return rows


def bench_ray(args) -> list[Row]:
    """Ray's object store (see the module docs): one actor is the consumer."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=args.ray_object_store)

    @ray.remote(num_cpus=0)
    class Resolver:
        def resolve(self, refs):
            t = now()
            obj = ray.get(refs[0])
            size = touch(obj)
            us = (now() - t) * 1e6
            del obj
            return us, size

    rows: list[Row] = []
    resolver = Resolver.remote()
    ray.get(resolver.resolve.remote([ray.put(b'warm')]))
    try:
        for kind in args.payloads:
            for size in args.sizes:
                log(f'ray {kind} {fmt_size(size)}')
                obj = make_payload(kind, size)
                want = expected_bytes(kind, size)

                def put_once() -> float:
                    t = now()
                    ref = ray.put(obj)
                    us = (now() - t) * 1e6
                    del ref
                    return us

                rows.append(Row('ray', kind, size, 'put',
                                series(put_once, size, args.quick, args.series_budget)))
                ref = ray.put(obj)

                def get_once() -> float:
                    t = now()
                    got = ray.get(ref)
                    us = (now() - t) * 1e6
                    del got
                    return us

                rows.append(Row('ray', kind, size, 'get',
                                series(get_once, size, args.quick, args.series_budget)))
                del ref
                create: list[float] = []
                child: list[float] = []
                e2e: list[float] = []

                def proxy_once() -> float:
                    t0 = now()
                    ref = ray.put(obj)
                    t1 = now()
                    child_us, got = ray.get(resolver.resolve.remote([ref]))
                    t2 = now()
                    del ref
                    if got != want:
                        raise RuntimeError(f'ray: the actor got {got} bytes, expected {want}')
                    create.append((t1 - t0) * 1e6)
                    child.append(child_us)
                    e2e.append((t2 - t0) * 1e6)
                    return (t2 - t0) * 1e6

                warm, _ = plan(size, args.quick)
                series(proxy_once, size, args.quick, args.series_budget)
                del create[:warm], child[:warm], e2e[:warm]
                rows.append(Row('ray', kind, size, 'proxy_create', create))
                rows.append(Row('ray', kind, size, 'child_resolve', child))
                rows.append(Row('ray', kind, size, 'proxy_e2e', e2e))
    finally:
        ray.shutdown()
    return rows


def log(msg: str) -> None:
    print(f'python-ref: {msg}', file=sys.stderr, flush=True)


def versions(redis_addr) -> str:
    import numpy
    import proxystore
    import redis
    parts = [f'Python {platform.python_version()}',
             f'proxystore {proxystore.__version__}',
             f'redis-py {redis.__version__}', f'numpy {numpy.__version__}']
    try:
        import ray
        parts.append(f'ray {ray.__version__}')
    except ImportError:
        pass
    if redis_addr:
        try:
            info = redis.Redis(*redis_addr).info('server')
            parts.append(f"redis-server {info['redis_version']}")
        except Exception:  # noqa: BLE001 - only for the header line
            pass
    return ', '.join(parts)


def print_markdown(rows: list[Row]) -> None:
    by = {(r.connector, r.payload, r.size, r.op): r for r in rows}
    groups: list[tuple[str, str]] = []
    for r in rows:
        if (r.connector, r.payload) not in groups:
            groups.append((r.connector, r.payload))
    for conn, kind in groups:
        sizes = sorted({r.size for r in rows if (r.connector, r.payload) == (conn, kind)})
        ops = [o for o in OPS if any((conn, kind, s, o) in by for s in sizes)]
        print(f'\n### {conn}, {kind} (median)\n')
        print('| size | ' + ' | '.join(ops) + ' | get MB/s |')
        print('|---:|' + '---:|' * (len(ops) + 1))
        for s in sizes:
            cells = [fmt_us(by[conn, kind, s, o].median()) if (conn, kind, s, o) in by
                     else '–' for o in ops]
            get = by.get((conn, kind, s, 'get'))
            mbps = f'{s / get.median():.0f}' if get else '–'
            print(f'| {fmt_size(s)} | ' + ' | '.join(cells) + f' | {mbps} |')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--connectors', default='local,file,redis',
                    help='comma list of: ' + ', '.join(CONNECTORS))
    ap.add_argument('--payloads', default='bytes,numpy',
                    help='comma list of: ' + ', '.join(PAYLOADS))
    ap.add_argument('--sizes', default='1KB,100KB,1MB,10MB,100MB',
                    help='comma list (decimal units; KiB, MiB, GiB binary)')
    ap.add_argument('--quick', action='store_true',
                    help='smoke run: 1 warm-up and 5 timed repetitions per series')
    ap.add_argument('--series-budget', type=float, default=3.0,
                    help='seconds after which a series stops (once it has 5 repetitions)')
    ap.add_argument('--redis', default=None, metavar='HOST:PORT',
                    help='a running Redis server (default: start one on a free port)')
    ap.add_argument('--file-dir', default=None,
                    help='directory of the file connector (default: a fresh one '
                         'under /dev/shm, removed at the end)')
    ap.add_argument('--ray-object-store', type=parse_size, default=parse_size('4GiB'),
                    help="size of Ray's object store (connector ray; default 4GiB)")
    ap.add_argument('--csv', default=None, help='write the long-form CSV here')
    ap.add_argument('--consumer', action='store_true', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consumer:
        return consumer_main()

    args.connectors = [c for c in args.connectors.split(',') if c]
    args.payloads = [p for p in args.payloads.split(',') if p]
    for c in args.connectors:
        if c not in CONNECTORS:
            ap.error(f'unknown connector {c!r} (known: {", ".join(CONNECTORS)})')
    for p in args.payloads:
        if p not in PAYLOADS:
            ap.error(f'unknown payload {p!r} (known: {", ".join(PAYLOADS)})')
    args.sizes = [parse_size(s) for s in args.sizes.split(',') if s]

    own_dir = args.file_dir is None
    if own_dir:
        base = '/dev/shm' if os.path.isdir('/dev/shm') else tempfile.gettempdir()
        args.file_dir = os.path.join(base, f'proxystore-py-bench-{os.getpid()}')
    own_redis = None
    redis_addr = None
    if 'redis' in args.connectors:
        if args.redis:
            host, _, port = args.redis.rpartition(':')
            if not host or not port.isdigit():
                ap.error(f'--redis wants HOST:PORT, got {args.redis!r}')
            redis_addr = (host, int(port))
            if not answers(*redis_addr):
                sys.exit(f'bench_store: no Redis server answers at {args.redis}')
        else:
            own_redis = OwnRedis()
            redis_addr = ('127.0.0.1', own_redis.port)
            log(f'started redis-server on 127.0.0.1:{own_redis.port} (pid {own_redis.proc.pid})')

    consumer = Consumer()
    rows: list[Row] = []
    try:
        print(f'Python ProxyStore reference: {versions(redis_addr)}')
        for name in args.connectors:
            if name == 'ray':
                rows += bench_ray(args)
            else:
                rows += bench_connector(name, args, redis_addr, consumer)
    finally:
        consumer.close()
        if own_redis:
            own_redis.stop()
        if own_dir:
            shutil.rmtree(args.file_dir, ignore_errors=True)
    print_markdown(rows)
    if args.csv:
        with open(args.csv, 'w', newline='') as fh:
            w = csv.writer(fh, lineterminator='\n')
            w.writerow(HEADER)
            for r in rows:
                w.writerow(r.csv())
        log(f'CSV: {args.csv}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
