"""The Python ProxyStore's stream over its Redis pub/sub shim, for
`proxystore-bench streams --python PYTHON` (same items, same measures).

    stream_bench.py consumer PORT TOPIC
        prints `ready`, then `done <end-ns> <items> <p50-ns> <p99-ns> <check>`
    stream_bench.py producer PORT TOPIC SIZE ITEMS
        sends ITEMS bytes objects of SIZE through a Store over ProxyStore's
        RedisConnector (the same redis-server), evict=True, then the end of
        stream; prints `start <ns>`

Latency per item: from the producer's send (metadata `t`, ns since the
epoch) to the end of the consumer's resolve (`extract`, one byte per 4 KiB
page touched).
"""

import sys
import time
import warnings

warnings.simplefilter('ignore')

from proxystore.connectors.redis import RedisConnector  # noqa: E402
from proxystore.proxy import extract  # noqa: E402
from proxystore.store import Store  # noqa: E402
from proxystore.stream import StreamConsumer, StreamProducer  # noqa: E402
from proxystore.stream.shims.redis import RedisPublisher, RedisSubscriber  # noqa: E402


def consumer(port: int, topic: str) -> None:
    sub = RedisSubscriber('127.0.0.1', port, topic)
    print('ready', flush=True)
    lat, check = [], 0
    with StreamConsumer(sub) as stream:
        for meta, item in stream.iter_with_metadata():
            value = extract(item)
            check += sum(value[::4096]) + len(value)
            lat.append(time.time_ns() - meta['t'])
    end = time.time_ns()
    lat.sort()
    q = lambda p: lat[min(int(len(lat) * p), len(lat) - 1)] if lat else 0  # noqa: E731
    print(f'done {end} {len(lat)} {q(0.5)} {q(0.99)} {check}', flush=True)


def producer(port: int, topic: str, size: int, items: int) -> None:
    store = Store('py-streams-bench', RedisConnector('127.0.0.1', port), cache_size=0)
    data = [bytes([i % 251 + 1]) * size for i in range(min(items, 4))]
    prod = StreamProducer(RedisPublisher('127.0.0.1', port), default_store=store)
    print(f'start {time.time_ns()}', flush=True)
    for i in range(items):
        prod.send(topic, data[i % len(data)], evict=True, metadata={'t': time.time_ns()})
    prod.close_topics(topic)
    prod.close()


if __name__ == '__main__':
    role, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if role == 'consumer':
        consumer(port, topic)
    else:
        producer(port, topic, int(sys.argv[4]), int(sys.argv[5]))
