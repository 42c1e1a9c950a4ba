#!/usr/bin/env python3
"""Medians of several benchmark CSVs side by side, as a markdown table.

    python3 benches/python/compare.py python.csv store.csv \\
        --section proxystore --payload bytes --op put,get,child_resolve --wide

Inputs are long-form CSVs of `proxystore-bench store|mpi` or of
benches/python/bench_store.py (columns impl, section, connector, payload,
size_bytes, op, reps, median_us, ..., mb_per_s, extra). A series is keyed by
(section, connector, payload, size_bytes, op). Each file is one column,
labelled by its `impl` when those differ, else by the shortest end of its
path that tells the files apart (`slurm-41/mpi.csv`, `slurm-42/mpi.csv` for
runs of the Slurm script).

--wide: one row per (connector, payload, size), one column per op, each cell
"first / second / ..." ("–" where a file has no such series, "n/a" where none
has). Otherwise: one row per series, one column per file. --mbps shows MB/s
(10**6 B/s) instead of the median ("–" also where the CSV gives none: the
MPI benchmark's page touch of a mapping, which moves no data). Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

KEY = ('section', 'connector', 'payload', 'size_bytes', 'op')


def fmt_us(us: float) -> str:
    if us < 1e3:
        return f'{us:.0f} µs'
    if us < 1e6:
        return f'{us / 1e3:.2f} ms'
    return f'{us / 1e6:.2f} s'


def load(path: str, want) -> tuple[str, dict[tuple, dict], list[tuple]]:
    """(impl, series by key, keys in file order) of the rows `want` accepts."""
    with open(path, newline='') as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in KEY + ('impl', 'median_us') if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f'compare: {path} lacks the column(s) {", ".join(missing)}')
        rows = list(reader)
    impl = rows[0]['impl'] if rows else '?'
    series: dict[tuple, dict] = {}
    order: list[tuple] = []
    for r in rows:
        if not want(r):
            continue
        k = (r['section'], r['connector'], r['payload'], int(r['size_bytes']), r['op'])
        if k not in series:
            order.append(k)
        series[k] = r
    return impl, series, order


def path_labels(paths: list[str]) -> list[str]:
    """The shortest trailing path components that differ between files."""
    parts = [os.path.normpath(os.path.abspath(p)).split(os.sep) for p in paths]
    longest = max(len(p) for p in parts)
    for n in range(1, longest + 1):
        labels = [os.sep.join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return list(paths)  # the same file given twice


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('csv', nargs='+', help='CSV files, one column each')
    ap.add_argument('--section', help='only this section (proxystore, mpi-pair, ...)')
    ap.add_argument('--payload', help='only this payload (bytes, numpy)')
    ap.add_argument('--op', help='comma list of ops, in the order to show them')
    ap.add_argument('--connector', help='comma list of connectors')
    ap.add_argument('--mbps', action='store_true', help='MB/s instead of medians')
    ap.add_argument('--wide', action='store_true', help='one column per op')
    args = ap.parse_args()

    ops = args.op.split(',') if args.op else None
    conns = set(args.connector.split(',')) if args.connector else None

    def want(r: dict) -> bool:
        return ((args.section is None or r['section'] == args.section)
                and (args.payload is None or r['payload'] == args.payload)
                and (ops is None or r['op'] in ops)
                and (conns is None or r['connector'] in conns))

    loaded = [load(p, want) for p in args.csv]
    impls = [impl for impl, _, _ in loaded]
    labels = impls if len(set(impls)) == len(impls) else path_labels(args.csv)
    tables = [series for _, series, _ in loaded]
    keys: list[tuple] = []
    for _, _, order in loaded:
        keys += [k for k in order if k not in keys]

    def cell(r: dict | None) -> str:
        if r is None:
            return '–'
        if args.mbps:
            return r.get('mb_per_s') or '–'
        return fmt_us(float(r['median_us']))

    what = '(MB/s)' if args.mbps else '(median)'
    if args.wide:
        rowkeys: list[tuple] = []
        opcols: list[str] = []
        for k in keys:
            if k[:4] not in rowkeys:
                rowkeys.append(k[:4])
            if k[4] not in opcols:
                opcols.append(k[4])
        if ops:
            opcols = [o for o in ops if o in opcols]
        print(f'cells: {" / ".join(labels)} {what}\n')
        print('| connector | payload | size | ' + ' | '.join(opcols) + ' |')
        print('|---|---|---:|' + '---:|' * len(opcols))
        for rk in rowkeys:
            cells = []
            for op in opcols:
                found = [t.get(rk + (op,)) for t in tables]
                cells.append('n/a' if all(r is None for r in found)
                             else ' / '.join(cell(r) for r in found))
            print(f'| {rk[1]} | {rk[2]} | {rk[3]:,} | ' + ' | '.join(cells) + ' |')
        return 0

    print('| section | connector | payload | size | op | '
          + ' | '.join(f'{lab} {what}' for lab in labels) + ' |')
    print('|---|---|---|---:|---|' + '---:|' * len(labels))
    for k in keys:
        sec, conn, payload, size, op = k
        print(f'| {sec} | {conn} | {payload} | {size:,} | {op} | '
              + ' | '.join(cell(t.get(k)) for t in tables) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
