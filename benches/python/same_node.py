#!/usr/bin/env python3
"""Same-node resolve table: the `child_resolve` medians (a consumer process
resolves a proxy, or Ray's actor gets a reference, and touches every 4 KiB
page) of several benchmark CSVs, one column per (implementation, connector),
one row per (payload, size), and the ratio of Ray's time to the first
column's.

    python3 benches/python/same_node.py store.csv python.csv \\
        --columns ucx,ucx-copy,ray,file

Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import sys


def fmt_size(n: int) -> str:
    for unit, m in (('GiB', 2**30), ('MiB', 2**20), ('GB', 10**9), ('MB', 10**6),
                    ('KB', 10**3), ('KiB', 2**10)):
        if n >= m and n % m == 0:
            return f'{n // m} {unit}'
    return f'{n} B'


def fmt_us(us: float) -> str:
    if us < 1e3:
        return f'{us:.0f} µs'
    if us < 1e6:
        return f'{us / 1e3:.2f} ms'
    return f'{us / 1e6:.2f} s'


LABELS = {
    ('proxystore-rs', 'ucx'): 'rs ucx, zero copy (mapped)',
    ('proxystore-rs', 'ucx-copy'): 'rs ucx, copy (one-sided get)',
    ('proxystore-rs', 'ofi'): 'rs ofi, zero copy (mapped)',
    ('proxystore-rs', 'ofi-copy'): 'rs ofi, copy (fi_read)',
    ('proxystore-py', 'ray'): 'Ray 2.60 object store',
    ('proxystore-py', 'file'): 'Python ProxyStore, file (/dev/shm)',
    ('proxystore-py', 'redis'): 'Python ProxyStore, redis',
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('csv', nargs='+')
    ap.add_argument('--columns', default='ucx,ucx-copy,ray,file',
                    help='connectors, in column order (the first is compared with ray)')
    ap.add_argument('--op', default='child_resolve')
    args = ap.parse_args()
    cols = [c for c in args.columns.split(',') if c]
    med: dict[tuple[str, str, int], float] = {}
    impl_of: dict[str, str] = {}
    for path in args.csv:
        with open(path, newline='') as fh:
            for r in csv.DictReader(fh):
                if r['op'] != args.op or r['connector'] not in cols:
                    continue
                key = (r['connector'], r['payload'], int(r['size_bytes']))
                med[key] = float(r['median_us'])
                impl_of[r['connector']] = r['impl']
    if not med:
        sys.exit(f'same_node: no {args.op} rows for {",".join(cols)}')
    rows = sorted({(p, s) for (_, p, s) in med}, key=lambda x: (x[0], x[1]))
    head = [LABELS.get((impl_of.get(c, ''), c), c) for c in cols]
    print('| payload | size | ' + ' | '.join(head) + f' | Ray / {cols[0]} |')
    print('|---|---:|' + '---:|' * (len(cols) + 1))
    for p, s in rows:
        cells = [fmt_us(med[c, p, s]) if (c, p, s) in med else '–' for c in cols]
        first, ray = med.get((cols[0], p, s)), med.get(('ray', p, s))
        ratio = f'{ray / first:.1f}x' if first and ray else '–'
        print(f'| {p} | {fmt_size(s)} | ' + ' | '.join(cells) + f' | {ratio} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
