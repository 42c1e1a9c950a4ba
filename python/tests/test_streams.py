"""Streams between the Python ProxyStore 1.1 and proxystore-rs with stores
only proxystore_rs opens (the UCX and the libfabric object servers): a Rust producer
(``proxystore-bench streams-producer``) feeds a Python ``StreamConsumer``,
and a Python ``StreamProducer`` feeds a Rust consumer (``proxystore-bench
streams-consumer``), over ProxyStore's Redis queue shim. The events name
``proxystore_rs.RustConnector``/``proxystore_rs.UcxConnector`` and
``proxystore_rs.RustKey``, which the other side imports or maps back.
"""

from __future__ import annotations

import subprocess
import uuid
import warnings

import pytest

warnings.filterwarnings('ignore', message='Streaming is an experimental feature')

from proxystore.proxy import Proxy, extract  # noqa: E402
from proxystore.store import Store  # noqa: E402
from proxystore.store.utils import get_key  # noqa: E402
from proxystore.stream import StreamConsumer, StreamProducer  # noqa: E402
from proxystore.stream.shims.redis import RedisQueuePublisher, RedisQueueSubscriber  # noqa: E402

from proxystore_rs import RustConnector, RustKey  # noqa: E402

from conftest import built_binary  # noqa: E402

SIZE = 300_000
ITEMS = 6


def bench() -> str:
    return built_binary(
        'proxystore-bench', 'PROXYSTORE_BENCH', 'cargo build --release -p proxystore-bench',
    )


def item(i: int) -> bytes:
    """Item i of a run, as `proxystore-bench` makes it."""
    return bytes([i % 4 + 1]) * SIZE


def touch(b: bytes) -> int:
    """What `proxystore-bench` sums over an item (one byte per 4 KiB page)."""
    return sum(b[::4096]) + len(b)


@pytest.fixture(params=['ucx', 'ofi'])
def server_store(request):
    """(kind, address) of an object server: UCX or libfabric (shm)."""
    kind = request.param
    return kind, request.getfixturevalue(f'{kind}_server')


def test_rust_producer_with_an_object_server_store_feeds_a_python_consumer(
    redis_server, server_store,
):
    host, port = redis_server
    kind, addr = server_store
    topic = f'r2p-{uuid.uuid4()}'
    out = subprocess.run(
        [bench(), 'streams-producer', 'redis-queue', str(port), topic,
         f'{kind}://{addr}', str(ITEMS), str(SIZE)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['sent', str(ITEMS)]
    seen, keys = [], []
    with StreamConsumer(RedisQueueSubscriber(host, port, topic, timeout=30)) as stream:
        for meta, proxy in stream.iter_with_metadata():
            assert type(proxy) is Proxy
            key = get_key(proxy)
            assert isinstance(key, RustKey) and key.kind == kind
            keys.append(key)
            value = extract(proxy)
            assert value == item(meta['i']), f'object {meta["i"]} byte for byte'
            seen.append(meta['i'])
    assert seen == list(range(ITEMS)), 'in order, then the end of stream'
    # evict was set: each object left the server when its proxy resolved.
    conn = RustConnector.from_url(f'{kind}://{addr}')
    assert not any(conn.exists(k) for k in keys)
    conn.close()


def test_python_producer_with_an_object_server_store_feeds_a_rust_consumer(
    redis_server, server_store,
):
    host, port = redis_server
    kind, addr = server_store
    topic = f'p2r-{uuid.uuid4()}'
    store = Store(f'py-{kind}-stream', RustConnector.from_url(f'{kind}://{addr}'), cache_size=0)
    producer = StreamProducer(RedisQueuePublisher(host, port), default_store=store, batch_size=2)
    for i in range(ITEMS):
        producer.send(topic, item(i), evict=True, metadata={'i': i, 't': 0})
    producer.close_topics(topic)
    producer.close()
    out = subprocess.run(
        [bench(), 'streams-consumer', 'redis-queue', str(port), topic],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split('\n')
    assert lines[0] == 'ready'
    done = lines[1].split()
    assert done[0] == 'done' and int(done[2]) == ITEMS, out.stdout
    assert int(done[5]) == sum(touch(item(i)) for i in range(ITEMS)), 'every byte page'
