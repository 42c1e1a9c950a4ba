"""Shared by the stream interop scripts: the objects both sides make, the
Python ProxyStore's shims by name."""

import sys


def obj(i: int) -> bytes:
    """Object i of a test stream: byte j is (31 i + 7 j) mod 251, 1 + 997 i
    bytes long (3 MiB for i = 5); the Rust tests make the same bytes."""
    n = 3 << 20 if i == 5 else 1 + 997 * i
    pattern = bytes((i * 31 + j * 7) % 251 for j in range(251))
    return (pattern * (n // 251 + 1))[:n]


def publisher(shim: str, port: int):
    if shim == 'redis':
        from proxystore.stream.shims.redis import RedisPublisher

        return RedisPublisher('127.0.0.1', port)
    if shim == 'redis-queue':
        from proxystore.stream.shims.redis import RedisQueuePublisher

        return RedisQueuePublisher('127.0.0.1', port)
    if shim == 'zmq':
        from proxystore.stream.shims.zmq import ZeroMQPublisher

        return ZeroMQPublisher('127.0.0.1', port)
    if shim == 'kafka':
        import confluent_kafka
        from proxystore.stream.shims.kafka import KafkaPublisher

        return KafkaPublisher(confluent_kafka.Producer({'bootstrap.servers': f'127.0.0.1:{port}'}))
    sys.exit(f'unknown shim {shim}')


def subscriber(shim: str, port: int, topic: str):
    if shim == 'redis':
        from proxystore.stream.shims.redis import RedisSubscriber

        return RedisSubscriber('127.0.0.1', port, topic)
    if shim == 'redis-queue':
        from proxystore.stream.shims.redis import RedisQueueSubscriber

        return RedisQueueSubscriber('127.0.0.1', port, topic, timeout=60)
    if shim == 'zmq':
        from proxystore.stream.shims.zmq import ZeroMQSubscriber

        return ZeroMQSubscriber('127.0.0.1', port, topic=topic)
    if shim == 'kafka':
        import uuid

        import confluent_kafka
        from proxystore.stream.shims.kafka import KafkaSubscriber

        consumer = confluent_kafka.Consumer(
            {
                'bootstrap.servers': f'127.0.0.1:{port}',
                'group.id': f'ps-{uuid.uuid4()}',
                'auto.offset.reset': 'earliest',
            }
        )
        consumer.subscribe([topic])
        return KafkaSubscriber(consumer)
    sys.exit(f'unknown shim {shim}')


def store(kind: str, arg: str, name: str):
    from proxystore.store import Store

    if kind == 'none':
        return None
    if kind == 'file':
        from proxystore.connectors.file import FileConnector

        return Store(name, FileConnector(arg, clear=False), cache_size=0)
    if kind == 'redis':
        from proxystore.connectors.redis import RedisConnector

        return Store(name, RedisConnector('127.0.0.1', int(arg)), cache_size=0)
    sys.exit(f'unknown store {kind}')
