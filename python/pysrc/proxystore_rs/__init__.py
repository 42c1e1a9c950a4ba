"""proxystore-rs connectors for the Python ProxyStore.

Each class implements the Python ProxyStore 1.1 connector protocol (``put``,
``get``, ``exists``, ``evict``, ``put_batch``, ``get_batch``, ``config``,
``from_config``, ``close``), so it plugs into an unchanged
``proxystore.store.Store``::

    from proxystore.store import Store
    from proxystore_rs import UcxConnector

    store = Store('s', UcxConnector('10.0.0.1:7700'))
    p = store.proxy(my_object)      # resolves in any process, one-sided RMA get

The I/O runs in Rust with the GIL released. ``get`` returns a read-only
``memoryview`` over the connector's own memory (the UCX connector's registered
receive buffer, the file connector's mapping): no copy is made until the
deserializer makes one (ProxyStore's default deserializer copies; a custom
one such as ``numpy.frombuffer`` need not).

Objects and keys are shared with the Rust API, the C ABI and the ``proxystore``
command-line tool: a store opened with the same configuration there reads
what Python writes.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence

from proxystore_rs._native import Buffer, ProxyStoreRsError, __version__
from proxystore_rs._native import Connector as _NativeConnector
from proxystore_rs._native import schemes

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
    'view_deserializer',
]


def bytes_serializer(obj: Any) -> bytes:
    """A ProxyStore serializer for bytes-like objects: stores them as they are."""
    return bytes(obj) if not isinstance(obj, bytes) else obj


def view_deserializer(buf: Any) -> memoryview:
    """A ProxyStore deserializer that keeps the connector's buffer: with our
    connectors, the resolved proxy is a read-only ``memoryview`` of the
    received memory, no copy (pair with ``bytes_serializer``)."""
    return buf if isinstance(buf, memoryview) else memoryview(buf)


class RustKey(NamedTuple):
    """Key of an object in a proxystore-rs connector."""

    kind: str
    """Connector kind (``file``, ``redis``, ``ucx``)."""
    data: bytes
    """The connector's encoded key."""


class RustConnector:
    """A proxystore-rs connector of any kind, from its options.

    Subclasses fix the kind. ``config()`` returns the options, and
    ``cls(**config())`` rebuilds an equivalent connector (what the Python
    ProxyStore does in another process when a proxy resolves).
    """

    kind: str = ''

    def __init__(self, kind: str | None = None, **options: Any) -> None:
        kind = kind or self.kind
        if not kind:
            raise ValueError('a connector kind is required')
        self.kind = kind
        self._native = _NativeConnector(kind, json.dumps(options))

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.config()!r})'

    def _key(self, key: RustKey) -> bytes:
        if key.kind != self.kind:
            raise ValueError(
                f'key of a {key.kind!r} connector given to a {self.kind!r} connector',
            )
        return key.data

    def close(self) -> None:
        """Close the connector (idempotent; stored objects stay)."""
        self._native.close()

    def config(self) -> dict[str, Any]:
        """The options that rebuild this connector (secrets are never included)."""
        options = json.loads(self._native.config_json())
        if type(self) is RustConnector:
            options['kind'] = self.kind
        return options

    @classmethod
    def from_url(cls, url: str) -> RustConnector:
        """The connector a store URL names, of any scheme in ``schemes()``
        (``file:///DIR``, ``redis://HOST:PORT/DB``, ``ucx://HOST:PORT``,
        ``ofi://HOST:PORT``, ``margo://HOST:PORT``, ``daos://POOL/CONTAINER``),
        parsed as the ``proxystore`` tool and the C ABI parse it. A scheme
        whose library is missing (Margo, DAOS) raises ``ProxyStoreRsError``
        naming what to install."""
        native = _NativeConnector.from_url(url)
        self = RustConnector.__new__(RustConnector)
        self.kind = native.kind
        self._native = native
        return self

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RustConnector:
        """Rebuild a connector from ``config()``."""
        return cls(**config)

    def put(self, obj: Any) -> RustKey:
        """Store a bytes-like object (``bytes`` are not copied)."""
        return RustKey(self.kind, self._native.put(obj))

    def put_batch(self, objs: Sequence[Any]) -> list[RustKey]:
        """Store many objects in one connector batch; keys in order."""
        return [RustKey(self.kind, k) for k in self._native.put_batch(list(objs))]

    def get(self, key: RustKey) -> memoryview | None:
        """A read-only view of the object's bytes, or None if it is missing."""
        buf = self._native.get(self._key(key))
        return None if buf is None else memoryview(buf)

    def get_batch(self, keys: Sequence[RustKey]) -> list[memoryview | None]:
        """Many gets in one connector batch (None where missing)."""
        got = self._native.get_batch([self._key(k) for k in keys])
        return [None if b is None else memoryview(b) for b in got]

    def exists(self, key: RustKey) -> bool:
        """Whether an object is stored under ``key``."""
        return self._native.exists(self._key(key))

    def evict(self, key: RustKey) -> None:
        """Remove the object (no error if it is missing)."""
        self._native.evict(self._key(key))

    def key_to_string(self, key: RustKey) -> str:
        """The key as the connector prints it (as the CLI and C ABI take it)."""
        return self._native.key_to_string(self._key(key))


class FileConnector(RustConnector):
    """Objects in files of a (shared) directory, read through a mapping."""

    kind = 'file'

    def __init__(self, dir: str, **options: Any) -> None:  # noqa: A002
        super().__init__(dir=dir, **options)


class RedisConnector(RustConnector):
    """A Redis server (pooled connections, pipelined batches)."""

    kind = 'redis'

    def __init__(self, host: str = 'localhost', port: int = 6379, **options: Any) -> None:
        super().__init__(host=host, port=port, **options)


class UcxConnector(RustConnector):
    """A proxystore-rs object server over UCX: gets are one-sided RMA reads of
    the server's registered memory into a reused, registered receive buffer.

    ``server`` is the object server's ``host:port``; see the ucx-connector
    README for the other options (``ucx_tls``, ``spawn``, ``timeout_ms``, ...).
    """

    kind = 'ucx'

    def __init__(self, server: str, **options: Any) -> None:
        super().__init__(server=server, **options)
