"""proxystore-rs connectors for the Python ProxyStore.

Each class implements the Python ProxyStore 1.1 connector protocol (``put``,
``get``, ``exists``, ``evict``, ``put_batch``, ``get_batch``, ``config``,
``from_config``, ``close``) and its ``DeferrableConnector`` extension
(``new_key``, ``set``), so it plugs into an unchanged
``proxystore.store.Store`` (futures, owned references and ``update``,
lifetimes, metrics)::

    from proxystore.store import Store
    from proxystore_rs import UcxConnector

    store = Store('s', UcxConnector('10.0.0.1:7700'))
    p = store.proxy(my_object)      # resolves in any process, one-sided RMA get

The I/O runs in Rust with the GIL released. ``get`` returns a read-only
``memoryview`` over the connector's own memory (the object server's segment
mapped on its node, the UCX connector's registered receive buffer, the file
connector's mapping), starting on a 64-byte boundary; ProxyStore's ``BS`` and
``NP`` headers are stored padded to 64 bytes (ProxyStore reads them as
before), so the payload is aligned too. Importing this package makes
ProxyStore's default deserializer resolve NumPy arrays from our connectors
without a copy (read-only arrays over that memory; see ``_zero_copy``).

Objects and keys are shared with the Rust API, the C ABI and the ``proxystore``
command-line tool: a store opened with the same configuration there reads
what Python writes.
"""

from __future__ import annotations

from typing import Any

from proxystore_rs._load import load_native

_native = load_native()

from proxystore_rs._connector import (  # noqa: E402
    FileConnector,
    RedisConnector,
    RustConnector,
    RustKey,
    UcxConnector,
)
from proxystore_rs._native import Buffer, ProxyStoreRsError, __version__, schemes  # noqa: E402
from proxystore_rs import _zero_copy  # noqa: E402

__all__ = [
    'Buffer',
    'FileConnector',
    'ProxyStoreRsError',
    'RedisConnector',
    'RustConnector',
    'RustKey',
    'UcxConnector',
    '__version__',
    'bytes_serializer',
    'schemes',
    'store_from_url',
    'view_deserializer',
    'zero_copy_deserialize',
]

zero_copy_deserialize = _zero_copy.deserialize
_zero_copy.install()


def bytes_serializer(obj: Any) -> bytes:
    """A ProxyStore serializer for bytes-like objects: stores them as they are."""
    return bytes(obj) if not isinstance(obj, bytes) else obj


def view_deserializer(buf: Any) -> memoryview:
    """A ProxyStore deserializer that keeps the connector's buffer: with our
    connectors, the resolved proxy is a read-only ``memoryview`` of the
    received memory, no copy (pair with ``bytes_serializer``)."""
    return buf if isinstance(buf, memoryview) else memoryview(buf)


def store_from_url(name: str, url: str, *, names: str | None = None, **kwargs: Any) -> Any:
    """A ``proxystore.store.Store`` named ``name`` over the connector of a
    store URL (``RustConnector.from_url``), with its ``cache=SIZE`` query key
    applied: ``cache=0`` turns the Store's cache off (a get after another
    process evicted the object misses, as with the C ABI and Rust); another
    size keeps ProxyStore's cache, which counts objects (``cache_size``, 16
    unless given in ``kwargs``), not bytes. ``kwargs`` go to ``Store``."""
    from proxystore.store import Store

    connector = RustConnector.from_url(url, names=names)
    if connector.cache_bytes == 0:
        kwargs['cache_size'] = 0
    return Store(name, connector, **kwargs)
