"""ProxyStore's deferrable features with each of our connectors, as with
upstream's File and Redis connectors: ``Store.future()``, owned and borrowed
references with ``update``, lifetimes and ``Store`` metrics; the same close
semantics for every kind; ``store_from_url`` with ``?cache=``."""

from __future__ import annotations

import pickle
import uuid

import pytest
from proxystore.connectors.file import FileConnector as UpstreamFile
from proxystore.connectors.protocols import DeferrableConnector
from proxystore.connectors.redis import RedisConnector as UpstreamRedis
from proxystore.store import Store
from proxystore.store.future import Future
from proxystore.store.lifetimes import ContextLifetime, LeaseLifetime
from proxystore.store.ref import borrow, mut_borrow, update
from proxystore.store.utils import get_key

import proxystore_rs
from proxystore_rs import (
    FileConnector, ProxyStoreRsError, RedisConnector, RustConnector, RustKey, UcxConnector,
)

from conftest import start_python

# Ours (the UCX and libfabric connectors name their objects in a file or
# Redis store), and
# upstream's File and Redis connectors: every test runs on each.
KINDS = ['file', 'redis', 'ucx-names-file', 'ucx-names-redis', 'ofi-names-file', 'upstream-file',
         'upstream-redis']
OURS = [k for k in KINDS if not k.startswith('upstream')]


def make(kind: str, request, tmp_path):
    def redis_url() -> str:
        host, port = request.getfixturevalue('redis_server')
        return f'redis://{host}:{port}/0'

    if kind == 'file':
        return FileConnector(str(tmp_path / 'store'))
    if kind == 'redis':
        host, port = request.getfixturevalue('redis_server')
        return RedisConnector(host, port)
    if kind == 'ucx-names-file':
        return UcxConnector(request.getfixturevalue('ucx_server'), names=f'file://{tmp_path}/names')
    if kind == 'ucx-names-redis':
        return UcxConnector(request.getfixturevalue('ucx_server'), names=redis_url())
    if kind == 'ofi-names-file':
        return RustConnector.from_url(f"ofi://{request.getfixturevalue('ofi_server')}",
                                      names=f'file://{tmp_path}/names')
    if kind == 'upstream-file':
        return UpstreamFile(str(tmp_path / 'upstream'))
    host, port = request.getfixturevalue('redis_server')
    return UpstreamRedis(host, port)


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    s = Store(f'rs-defer-{request.param}-{uuid.uuid4().hex[:8]}',
              make(request.param, request, tmp_path), metrics=True, register=True)
    yield s
    s.close()


@pytest.fixture(params=OURS)
def ours(request, tmp_path):
    return make(request.param, request, tmp_path)


def test_is_a_deferrable_connector(store):
    assert isinstance(store.connector, DeferrableConnector)


def test_future_resolves_here_and_in_another_process(store):
    f: Future[list[int]] = store.future()
    proxy = f.proxy()
    assert not f.done()
    f.set_result([1, 2, 3])
    assert f.done() and f.result() == [1, 2, 3]
    assert proxy == [1, 2, 3]
    # A second future, set after a child process started waiting on it.
    g = store.future(polling_interval=0.01)
    child = start_python(
        'import pickle, sys\n'
        'from proxystore.proxy import extract\n'
        'p = pickle.loads(sys.stdin.buffer.read())\n'
        'sys.stdout.write(repr(extract(p)))\n',
    )
    child.stdin.write(pickle.dumps(g.proxy()))
    child.stdin.close()
    g.set_result({'x': 7})
    out, err = child.stdout.read(), child.stderr.read()
    assert child.wait(60) == 0, err.decode()
    assert out == b"{'x': 7}"


def test_owned_and_borrowed_references_update(store):
    owned = store.owned_proxy([1, 2])
    key = get_key(owned)
    owned.append(3)
    update(owned)
    fresh = Store(f'{store.name}-reader', type(store.connector).from_config(store.connector.config()),
                  cache_size=0)
    try:
        assert fresh.get(key) == [1, 2, 3]
        ref = borrow(owned)
        assert ref == [1, 2, 3]
        del ref
        mut = mut_borrow(owned)
        mut.append(4)
        update(mut)
        del mut
        assert fresh.get(key) == [1, 2, 3, 4]
    finally:
        fresh.close()
    del owned  # an owned proxy evicts its object when it goes away
    assert not store.exists(key)


def test_lifetimes_evict_their_objects(store):
    with ContextLifetime(store) as life:
        key = store.put('value', lifetime=life)
        p = store.proxy([1, 2], lifetime=life)
        pk = get_key(p)
        assert store.exists(key) and store.exists(pk)
    assert not store.exists(key) and not store.exists(pk)
    lease = LeaseLifetime(store, expiry=60)
    k = store.put(b'x' * 100, lifetime=lease)
    lease.close()
    assert not store.exists(k)


def test_store_metrics(store):
    key = store.put(b'x' * 1000)
    assert store.get(key) == b'x' * 1000
    f = store.future()
    f.set_result('later')
    assert f.result() == 'later'
    m = store.metrics.get_metrics(key)
    assert m.attributes['store.put.object_size'] >= 1000
    assert m.counters['store.get.cache_misses'] == 1
    for t in ('store.put', 'store.put.connector', 'store.get', 'store.get.connector'):
        assert m.times[t].count == 1, t
    fm = store.metrics.get_metrics(get_key(f.proxy()))
    assert 'store.set.serialize' in fm.times and fm.attributes['store.set.object_size'] > 0


def test_close_semantics_are_the_same_for_every_kind(ours):
    c = ours
    reader = type(c).from_config(c.config())
    keep = reader.put(b'kept')
    keys = c.put_batch([b'a', b'b'])
    k = c.new_key()
    c.set(k, b'set')
    assert reader.exists(k) and bytes(reader.get(k)) == b'set'
    c.close(clear=True)   # evicts what c stored
    c.close()             # idempotent
    for key in [*keys, k]:
        assert not reader.exists(key)
    assert reader.exists(keep)
    for op in (lambda: c.put(b'x'), lambda: c.get(keep), lambda: c.exists(keep),
               lambda: c.evict(keep), lambda: c.new_key(), lambda: c.set(keep, b'y'),
               lambda: c.put_batch([b'x']), lambda: c.get_batch([keep])):
        with pytest.raises(ProxyStoreRsError, match='closed'):
            op()
    reader.close()
    with pytest.raises(ProxyStoreRsError, match='closed'):
        reader.exists(keep)


def test_ucx_without_names_says_how_to_mint_keys(ucx_server):
    c = UcxConnector(ucx_server)
    try:
        with pytest.raises(NotImplementedError, match="names="):
            c.new_key()
        k = c.put(b'x')
        with pytest.raises(NotImplementedError, match="names="):
            c.set(k, b'y')
        with pytest.raises(ValueError, match='names'):
            UcxConnector(ucx_server, names=f'ucx://{ucx_server}')
    finally:
        c.close()


def test_named_keys_survive_set_and_reads_batch(ucx_server, tmp_path):
    c = UcxConnector(ucx_server, names=f'file://{tmp_path}/names')
    try:
        keys = c.put_batch([b'one', b'two', b'three'])
        assert all(isinstance(k, RustKey) and k.named for k in keys)
        c.set(keys[1], b'TWO')
        c.evict(keys[2])
        got = c.get_batch(keys)
        assert [None if g is None else bytes(g) for g in got] == [b'one', b'TWO', None]
        plain = UcxConnector(ucx_server)
        with pytest.raises(ValueError, match='named key'):
            plain.get(keys[0])
        plain.close()
        assert c.config()['names'] == f'file://{tmp_path}/names'
    finally:
        c.close()


def test_store_from_url_applies_cache(tmp_path):
    url = f'file://{tmp_path}/s'
    s = proxystore_rs.store_from_url('rs-url-cache0', f'{url}?cache=0')
    other = FileConnector(f'{tmp_path}/s')
    try:
        assert s.connector.cache_bytes == 0
        key = s.put('v')
        assert s.get(key) == 'v'
        other.evict(key)
        assert s.get(key) is None  # no cache answers for an evicted object
    finally:
        s.close()
        other.close()
    s2 = proxystore_rs.store_from_url('rs-url-cache1m', f'{url}?cache=1M')
    assert s2.connector.cache_bytes == 1 << 20
    key = s2.put('w')
    assert s2.get(key) == 'w' and s2.is_cached(key)
    s2.close()
    with pytest.raises(ProxyStoreRsError, match='cache'):
        proxystore_rs.RustConnector.from_url(f'{url}?cache=lots')
