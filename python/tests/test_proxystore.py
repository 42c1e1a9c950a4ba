"""proxystore-rs connectors inside the real Python ProxyStore 1.1."""

from __future__ import annotations

import pickle
import threading
import time
import uuid

import numpy
import proxystore
import pytest
from proxystore.connectors.protocols import Connector as ConnectorProtocol
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.config import StoreConfig
from proxystore.store.utils import get_key

import proxystore_rs
from proxystore_rs import RedisConnector, RustKey

from conftest import run_python

def test_real_proxystore_1_1():
    assert proxystore.__version__.startswith('1.1.'), proxystore.__version__


def test_implements_the_connector_protocol(connector):
    assert isinstance(connector, ConnectorProtocol)


def test_connector_operations(connector):
    key = connector.put(b'hello')
    assert isinstance(key, RustKey) and key.kind == connector.kind
    assert connector.exists(key)
    got = connector.get(key)
    assert isinstance(got, memoryview) and got.readonly
    assert bytes(got) == b'hello'
    keys = connector.put_batch([b'a', bytearray(b'bb'), memoryview(b'ccc')])
    assert [bytes(v) for v in connector.get_batch(keys)] == [b'a', b'bb', b'ccc']
    connector.evict(keys[1])
    assert not connector.exists(keys[1])
    assert connector.get(keys[1]) is None
    assert [v is None for v in connector.get_batch(keys)] == [False, True, False]
    connector.evict(keys[1])  # missing: no error
    with pytest.raises(ValueError, match='bytes-like'):
        connector.put('a str is not bytes')


def test_bad_keys_are_errors_not_crashes(connector):
    bad = RustKey(connector.kind, b'\xff' * 7)
    with pytest.raises(proxystore_rs.ProxyStoreRsError):
        connector.get(bad)
    with pytest.raises(ValueError, match='connector'):
        connector.get(RustKey('nosuch', b''))


def test_store_put_get_proxy(connector):
    store = Store(f'rs-{connector.kind}-{uuid.uuid4().hex[:8]}', connector, register=True)
    try:
        arr = numpy.arange(100_000, dtype=numpy.float64)
        key = store.put(arr)
        assert numpy.array_equal(store.get(key), arr)
        assert store.exists(key)
        keys = store.put_batch(['x', b'y', {'z': 1}])
        assert [store.get(k) for k in keys] == ['x', b'y', {'z': 1}]
        p = store.proxy(arr, populate_target=False)
        assert isinstance(p, Proxy)
        assert float(p.sum()) == float(arr.sum())  # resolves here
        store.evict(key)
        assert not store.exists(key)
    finally:
        store.close()


CHILD = '''
import pickle, sys, hashlib
import proxystore_rs  # noqa: F401  (the connector class is imported by path anyway)
from proxystore.proxy import extract, get_factory, is_resolved
p = pickle.loads(sys.stdin.buffer.read())
assert not is_resolved(p)
data = extract(p)  # resolves in this process through the proxystore-rs connector
store_name = get_factory(p).store_config.name
sys.stdout.write(hashlib.sha256(data).hexdigest() + ' ' + str(len(data)) + ' ' + store_name)
'''


def test_proxy_resolves_in_another_process(connector):
    import hashlib

    name = f'rs-child-{connector.kind}-{uuid.uuid4().hex[:8]}'
    store = Store(name, connector, register=True)
    try:
        payload = numpy.random.default_rng(7).bytes(3 << 20)
        p = store.proxy(payload, evict=True)
        out = run_python(CHILD, pickle.dumps(p)).decode().split()
        assert out == [hashlib.sha256(payload).hexdigest(), str(len(payload)), name]
        # evict=True: the child's resolve removed the object.
        assert not store.exists(get_key(p))
    finally:
        store.close()


def test_store_config_round_trip(connector):
    store = Store(f'rs-cfg-{connector.kind}-{uuid.uuid4().hex[:8]}', connector, cache_size=0)
    try:
        key = store.put(b'round trip')
        config = store.config()
        assert config.connector.kind == f'proxystore_rs.{type(connector).__name__}'
        assert config.connector.options == connector.config()
        # Through JSON, as a configuration file or another process would see it.
        config2 = StoreConfig.model_validate_json(config.model_dump_json())
        store2 = Store.from_config(config2)
        try:
            assert type(store2.connector) is type(connector)
            assert store2.connector.config() == connector.config()
            assert store2.get(key) == b'round trip'
        finally:
            store2.close()
        # The connector's own config round trip.
        again = type(connector).from_config(connector.config())
        assert again.get(key) is not None
        again.close()
    finally:
        store.close()


def test_get_is_a_view_of_the_connector_memory(connector):
    key = connector.put(numpy.arange(4096, dtype=numpy.uint8).tobytes())
    view = connector.get(key)
    buf = view.obj
    assert isinstance(buf, proxystore_rs.Buffer)
    assert len(buf) == 4096
    # numpy over the view reads the connector's buffer itself: same address.
    arr = numpy.frombuffer(view, dtype=numpy.uint8)
    assert arr.__array_interface__['data'][0] == buf.address
    assert int(arr[4095]) == 4095 % 256
    with pytest.raises((TypeError, ValueError)):
        arr[0] = 1  # read-only
    with pytest.raises(TypeError, match='read-only'):
        memoryview(buf)[0:1] = b'\x00'


def test_gil_is_released_during_io(redis_server):
    host, port = redis_server
    c = RedisConnector(host, port)
    key = c.put(b'x')
    # DEBUG SLEEP stalls the real server for 0.5 s; our get waits for it in
    # another thread. If that wait held the GIL, this thread could not count.
    import socket

    s = socket.create_connection((host, port))
    s.sendall(b'*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.5\r\n')
    time.sleep(0.05)
    done = threading.Event()

    def get():
        assert bytes(c.get(key)) == b'x'
        done.set()

    t = threading.Thread(target=get)
    t.start()
    time.sleep(0.02)
    count = 0
    while not done.is_set():
        count += 1
    t.join()
    s.recv(16)
    s.close()
    c.close()
    assert count > 1000, count


def test_view_deserializer_resolves_without_a_copy(connector):
    from proxystore.proxy import extract

    store = Store(
        f'rs-view-{connector.kind}-{uuid.uuid4().hex[:8]}', connector, cache_size=0,
        serializer=proxystore_rs.bytes_serializer,
        deserializer=proxystore_rs.view_deserializer,
    )
    try:
        payload = bytes(range(256)) * 1000
        p = store.proxy(payload, populate_target=False)
        got = extract(p)
        assert isinstance(got, memoryview) and isinstance(got.obj, proxystore_rs.Buffer)
        assert got == payload
    finally:
        store.close()
