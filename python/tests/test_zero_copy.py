"""Zero-copy resolves with ProxyStore's default Store settings, and aligned
payloads, with our connectors (``proxystore_rs._zero_copy``)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid

import numpy
import proxystore.serialize
import pytest
from proxystore.connectors.file import FileConnector as UpstreamFile
from proxystore.store import Store

import proxystore_rs
from proxystore_rs import UcxConnector

from conftest import REPO

def address(a: numpy.ndarray) -> int:
    return a.__array_interface__['data'][0]


def views_connector_memory(a: numpy.ndarray) -> bool:
    """Whether the array's bases end in a memoryview of our Buffer."""
    b = a
    while getattr(b, 'base', None) is not None:
        b = b.base
    return isinstance(getattr(b, 'obj', None), proxystore_rs.Buffer)


def test_import_installs_the_deserializer():
    assert proxystore.serialize.deserialize is proxystore_rs.zero_copy_deserialize
    proxystore_rs._zero_copy.uninstall()
    try:
        assert proxystore.serialize.deserialize is not proxystore_rs.zero_copy_deserialize
    finally:
        proxystore_rs._zero_copy.install()
    assert proxystore.serialize.deserialize is proxystore_rs.zero_copy_deserialize


@pytest.mark.parametrize('arr', [
    numpy.arange(1000, dtype=numpy.float64),
    numpy.arange(24, dtype=numpy.int32).reshape(2, 3, 4),
    numpy.asfortranarray(numpy.arange(12, dtype=numpy.float32).reshape(3, 4)),
    numpy.zeros(0, dtype=numpy.int16),
    numpy.array(2.5),
], ids=['f8', 'i4-3d', 'f4-fortran', 'empty', 'scalar'])
def test_default_store_resolves_arrays_in_place(connector, arr):
    store = Store(f'rs-zc-{connector.kind}-{uuid.uuid4().hex[:8]}', connector, cache_size=0)
    key = store.put(arr)
    got = store.get(key)
    assert isinstance(got, numpy.ndarray)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert numpy.array_equal(got, arr)
    assert got.flags.f_contiguous == arr.flags.f_contiguous
    assert views_connector_memory(got) and not got.flags.writeable
    if got.size:
        assert address(got) % 64 == 0, address(got) % 64


def test_other_objects_and_connectors_resolve_as_before(connector, tmp_path):
    store = Store(f'rs-zc-other-{uuid.uuid4().hex[:8]}', connector, cache_size=0)
    for obj in [b'bytes', 'text', {'a': [1, 2]}, numpy.array([{'x': 1}], dtype=object)]:
        got = store.get(store.put(obj))
        if isinstance(obj, numpy.ndarray):
            assert got.dtype == object and got[0] == {'x': 1}
        else:
            assert got == obj and type(got) is type(obj)
    upstream = Store(f'rs-zc-up-{uuid.uuid4().hex[:8]}', UpstreamFile(str(tmp_path / 'up')),
                     cache_size=0)
    got = upstream.get(upstream.put(numpy.arange(10.0)))
    assert not views_connector_memory(got) and got.flags.writeable  # upstream's copy
    upstream.close()


def test_python_payloads_are_stored_aligned(connector):
    for n in [1, 63, 4096, 300_000, 3 << 20]:
        data = numpy.random.default_rng(n).bytes(n)
        key = connector.put(proxystore.serialize.serialize(data))
        view = connector.get(key)
        assert view.obj.address % 64 == 0
        assert bytes(view[:2]) == b'BS' and view[63] == ord('\n')  # the padded header
        assert proxystore.serialize.deserialize(view) == data
        arr = numpy.arange(n, dtype=numpy.float64)
        got = proxystore.serialize.deserialize(connector.get(connector.put(
            proxystore.serialize.serialize(arr))))
        assert numpy.array_equal(got, arr) and address(got) % 64 == 0
        assert views_connector_memory(got)


def test_100mb_child_resolve_beats_upstream_file_5x(ucx_server):
    """The same run: a 100 MB array resolved in a child process with the
    default Store settings, through our UCX connector (a view of the object
    server's mapped memory) vs upstream's FileConnector on /dev/shm (which
    reads the file and copies the array out of it)."""
    sys.path.insert(0, str(REPO / 'python' / 'bench'))
    from default_store import measure

    d = tempfile.mkdtemp(dir='/dev/shm')
    try:
        rows = measure({
            'upstream': lambda: UpstreamFile(f'{d}/upstream'),
            'ucx': lambda: UcxConnector(ucx_server),
        }, 100_000_000, 5)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    (up, up_view), (ucx, ucx_view) = rows['upstream'], rows['ucx']
    print(f'100 MB child resolve: upstream file {up * 1e3:.1f} ms, ucx {ucx * 1e3:.1f} ms '
          f'({up / ucx:.1f}x)')
    assert not up_view and ucx_view
    assert up / ucx >= 5, (up, ucx)
