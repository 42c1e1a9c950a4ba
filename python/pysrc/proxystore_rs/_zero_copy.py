"""Zero-copy resolves with ProxyStore's default Store settings.

ProxyStore's default deserializer (``proxystore.serialize.deserialize``)
copies: it wraps the buffer in ``io.BytesIO`` (a full copy of a
``memoryview``) and ``numpy.load`` copies the array out again. ``install()``
(done on ``import proxystore_rs``) puts a deserializer in its place that
handles the buffers our connectors return: a NumPy array of numbers (ProxyStore's ``NP``
format) becomes a read-only ``numpy.ndarray`` over the connector's own memory
(the object server's mapped segment, a file mapping, a receive buffer),
no copy; everything else, and every buffer other connectors return, goes to
ProxyStore's deserializer unchanged. ``Store`` looks the default up at each
get, so stores made before the import use it too; a store given its own
``deserializer`` is not affected.
"""

from __future__ import annotations

import io
from typing import Any

from proxystore_rs._native import Buffer

# An identifier line is at most this long (the codec pads BS/NP lines to 64).
_LINE_MAX = 64

_original: Any = None


def _numpy_view(view: memoryview) -> Any | None:
    """The array in ``view`` (an ``NP`` object) as a view, or None if it is
    not one of plain numbers (then ProxyStore's own path decodes it)."""
    head = bytes(view[:_LINE_MAX])
    nl = head.find(b'\n')
    if nl < 2 or head[:nl].strip() != b'NP':
        return None
    import numpy
    from numpy.lib import format as npy

    start = nl + 1
    # The .npy header: magic (6), version (2), length (2 or 4), the dict.
    pre = bytes(view[start:start + 12])
    if len(pre) < 10 or pre[:6] != b'\x93NUMPY':
        return None
    hlen = int.from_bytes(pre[8:10], 'little') + 10 if pre[6] == 1 else (
        int.from_bytes(pre[8:12], 'little') + 12)
    f = io.BytesIO(bytes(view[start:start + hlen]))
    try:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy.read_array_header_2_0(f)
        else:
            return None
    except Exception:  # noqa: BLE001 (malformed: ProxyStore's path reports it)
        return None
    if dtype.hasobject:
        return None
    count = 1
    for d in shape:
        count *= d
    offset = start + hlen
    if len(view) - offset != count * dtype.itemsize:
        return None
    arr = numpy.frombuffer(view, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order='F' if fortran_order else 'C')


def deserialize(buffer: Any) -> Any:
    """ProxyStore's ``deserialize``, except that a NumPy array of numbers in
    a buffer one of our connectors returned resolves without a copy (a
    read-only array over the connector's memory)."""
    if isinstance(buffer, memoryview) and isinstance(buffer.obj, Buffer):
        arr = _numpy_view(buffer)
        if arr is not None:
            return arr
    return (_original or _proxystore_deserialize())(buffer)


def _proxystore_deserialize() -> Any:
    import proxystore.serialize

    return proxystore.serialize.deserialize


def install() -> None:
    """Make ``deserialize`` ProxyStore's default (idempotent)."""
    global _original
    try:
        import proxystore.serialize as ps
    except ImportError:  # proxystore is a dependency; nothing to patch without it
        return
    if ps.deserialize is not deserialize:
        _original = ps.deserialize
        ps.deserialize = deserialize


def uninstall() -> None:
    """Put ProxyStore's own default deserializer back."""
    global _original
    import proxystore.serialize as ps

    if ps.deserialize is deserialize and _original is not None:
        ps.deserialize = _original
    _original = None
