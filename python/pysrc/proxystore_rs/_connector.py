"""The connector classes: proxystore-rs connectors in the Python ProxyStore's
connector protocol, deferrable (``new_key``/``set``) included."""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence

from proxystore_rs._native import Connector as _NativeConnector
from proxystore_rs._native import ProxyStoreRsError


class RustKey(NamedTuple):
    """Key of an object in a proxystore-rs connector."""

    kind: str
    """Connector kind (``file``, ``redis``, ``ucx``, ...)."""
    data: bytes
    """The connector's encoded key (with ``named``: the name's key)."""
    named: bool = False
    """Whether the key is a name in the connector's ``names`` store (see
    ``RustConnector``), which holds the object's own key."""


class RustConnector:
    """A proxystore-rs connector of any kind, from its options.

    Subclasses fix the kind. ``config()`` returns the options, and
    ``cls(**config())`` rebuilds an equivalent connector (what the Python
    ProxyStore does in another process when a proxy resolves).

    Deferrable (``new_key``, ``set``: ``Store.future()``, owned references
    and ``update``): file and Redis connectors mint keys themselves. The
    object-server connectors (UCX, libfabric) cannot: their keys say where the
    server placed the object. Give them ``names``, the URL of a file or Redis
    store (``file:///shared/dir``, ``redis://host:6379/0``) that every process
    using the proxies reaches: each object then gets a name there that holds
    its key, so keys can be minted before the object exists and re-pointed to
    a new object (``set``; the old object is evicted). A get through a name
    costs one small get of the names store more.

    Closing: ``close()`` is idempotent; afterwards every operation raises
    ``ProxyStoreRsError`` ("closed"), for every kind. ``close(clear=True)``
    first evicts every object this connector stored (and still holds).
    """

    kind: str = ''

    def __init__(self, kind: str | None = None, *, names: str | None = None,
                 **options: Any) -> None:
        kind = kind or self.kind
        if not kind:
            raise ValueError('a connector kind is required')
        native = _NativeConnector(kind, json.dumps(options))
        self._setup(native, names)

    def _setup(self, native: Any, names: str | None) -> None:
        self.kind = native.kind
        self._native = native
        self._closed = False
        self._stored: set[bytes] = set()
        self.cache_bytes: int | None = None
        self._names_url = names
        self._names = None
        if names is not None:
            named, _ = _NativeConnector.from_store_url(names)
            if not named.deferrable:
                named.close()
                raise ValueError(
                    f'names={names!r}: a {named.kind} store cannot hold names '
                    '(give a file:// or redis:// store URL)',
                )
            self._names = named

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.config()!r})'

    # ---- helpers ---------------------------------------------------------

    def _open(self) -> Any:
        if self._closed:
            raise ProxyStoreRsError(f'this {self.kind} connector is closed')
        return self._native

    def _key(self, key: RustKey) -> bytes:
        self._open()
        if key.kind != self.kind:
            raise ValueError(
                f'key of a {key.kind!r} connector given to a {self.kind!r} connector',
            )
        if bool(key.named) != (self._names is not None):
            raise ValueError(
                'a named key given to a connector without names, or the reverse '
                '(both sides need the same names= store)',
            )
        return key.data

    def _new(self, data: bytes) -> RustKey:
        self._stored.add(data)
        return RustKey(self.kind, data, self._names is not None)

    def _located(self, name: bytes) -> bytes | None:
        """The object key a name holds (None: no object yet, or evicted)."""
        loc = self._names.get(name)
        return None if loc is None else bytes(memoryview(loc))

    # ---- the connector protocol --------------------------------------------

    def close(self, clear: bool = False) -> None:
        """Close the connector (idempotent; stored objects stay unless
        ``clear``, which evicts every object this connector stored first)."""
        if self._closed:
            return
        try:
            if clear:
                for data in list(self._stored):
                    self.evict(RustKey(self.kind, data, self._names is not None))
        finally:
            self._closed = True
            self._native.close()
            if self._names is not None:
                self._names.close()

    def config(self) -> dict[str, Any]:
        """The options that rebuild this connector (secrets are never included)."""
        options = json.loads(self._native.config_json())
        if type(self) is RustConnector:
            options['kind'] = self.kind
        if self._names_url is not None:
            options['names'] = self._names_url
        return options

    @classmethod
    def from_url(cls, url: str, *, names: str | None = None) -> RustConnector:
        """The connector a store URL names, of any scheme in ``schemes()``
        (``file:///DIR``, ``redis://HOST:PORT/DB``, ``ucx://HOST:PORT``,
        ``ofi://HOST:PORT``, ``margo://HOST:PORT``, ``daos://POOL/CONTAINER``),
        parsed as the ``proxystore`` tool and the C ABI parse it. A scheme
        whose library is missing (Margo, DAOS) raises ``ProxyStoreRsError``
        naming what to install. The store key ``cache=SIZE`` is accepted and
        kept in ``cache_bytes`` (``store_from_url`` applies it)."""
        native, cache = _NativeConnector.from_store_url(url)
        self = RustConnector.__new__(RustConnector)
        self._setup(native, names)
        self.cache_bytes = cache
        return self

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RustConnector:
        """Rebuild a connector from ``config()``."""
        return cls(**config)

    def put(self, obj: Any) -> RustKey:
        """Store a bytes-like object (``bytes`` are not copied)."""
        loc = self._open().put(obj)
        if self._names is not None:
            return self._new(self._names.put(loc))
        return self._new(loc)

    def put_batch(self, objs: Sequence[Any]) -> list[RustKey]:
        """Store many objects in one connector batch; keys in order."""
        locs = self._open().put_batch(list(objs))
        if self._names is not None:
            locs = self._names.put_batch(locs)
        return [self._new(k) for k in locs]

    def get(self, key: RustKey) -> memoryview | None:
        """A read-only view of the object's bytes, or None if it is missing."""
        data = self._key(key)
        if self._names is not None:
            data = self._located(data)
            if data is None:
                return None
        buf = self._native.get(data)
        return None if buf is None else memoryview(buf)

    def get_batch(self, keys: Sequence[RustKey]) -> list[memoryview | None]:
        """Many gets in one connector batch (None where missing)."""
        datas = [self._key(k) for k in keys]
        if self._names is None:
            got = self._native.get_batch(datas)
            return [None if b is None else memoryview(b) for b in got]
        locs = [None if b is None else bytes(memoryview(b))
                for b in self._names.get_batch(datas)]
        present = [loc for loc in locs if loc is not None]
        found = iter(self._native.get_batch(present))
        out: list[memoryview | None] = []
        for loc in locs:
            b = None if loc is None else next(found)
            out.append(None if b is None else memoryview(b))
        return out

    def exists(self, key: RustKey) -> bool:
        """Whether an object is stored under ``key``."""
        data = self._key(key)
        if self._names is not None:
            data = self._located(data)
            if data is None:
                return False
        return self._native.exists(data)

    def evict(self, key: RustKey) -> None:
        """Remove the object (no error if it is missing)."""
        data = self._key(key)
        self._stored.discard(data)
        if self._names is not None:
            loc = self._located(data)
            self._names.evict(data)
            if loc is None:
                return
            data = loc
        self._native.evict(data)

    def new_key(self, obj: Any = None) -> RustKey:
        """A key with no object yet; ``set`` stores its object (ProxyStore's
        ``DeferrableConnector``: ``Store.future()``). ``obj`` is ignored."""
        native = self._open()
        if self._names is not None:
            return self._new(self._names.new_key())
        if not native.deferrable:
            raise NotImplementedError(
                f'a {self.kind} connector cannot mint keys before the object is '
                f'stored (its keys are server locations): give {type(self).__name__} '
                "names='file:///shared/dir' or names='redis://host:port/0'",
            )
        return self._new(native.new_key())

    def set(self, key: RustKey, obj: Any) -> None:
        """Store ``obj`` under ``key`` (from ``new_key``), or replace the object
        of a key from ``put`` (ProxyStore's ``update`` of owned references)."""
        data = self._key(key)
        if self._names is None:
            if not self._native.deferrable:
                raise NotImplementedError(
                    f'a {self.kind} connector cannot replace an object under its key: '
                    f"give {type(self).__name__} names='file:///shared/dir' "
                    "or names='redis://host:port/0'",
                )
            self._native.set(data, obj)
        else:
            old = self._located(data)
            self._names.set(data, self._native.put(obj))
            if old is not None:
                self._native.evict(old)
        self._stored.add(data)

    def key_to_string(self, key: RustKey) -> str:
        """The key as the connector prints it (as the CLI and C ABI take it)."""
        data = self._key(key)
        if self._names is not None:
            return self._names.key_to_string(data)
        return self._native.key_to_string(data)


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
    the server's registered memory into a reused, registered receive buffer
    (on the server's node: a mapping of the server's memory, no copy).

    ``server`` is the object server's ``host:port``; see the ucx-connector
    README for the other options (``ucx_tls``, ``spawn``, ``timeout_ms``, ...)
    and ``RustConnector`` for ``names`` (futures, owned references).
    """

    kind = 'ucx'

    def __init__(self, server: str, **options: Any) -> None:
        super().__init__(server=server, **options)


# The public import path, which ProxyStore records in store configurations
# (`proxystore_rs.UcxConnector`) and pickle records in keys.
for _cls in (RustKey, RustConnector, FileConnector, RedisConnector, UcxConnector):
    _cls.__module__ = 'proxystore_rs'
del _cls
