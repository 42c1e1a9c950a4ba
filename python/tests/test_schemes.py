"""Every store URL scheme of the ``proxystore`` tool opens from Python.

File, Redis, UCX and libfabric open against real services; Margo and DAOS,
whose libraries are loaded at run time, either work (when installed and a
service is named by ``PROXYSTORE_MARGO_URL`` / ``PROXYSTORE_DAOS_URL``) or fail
with a connector error saying what is missing: never "unsupported scheme".
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import time

import pytest

import proxystore_rs
from proxystore_rs import ProxyStoreRsError, RustConnector

from conftest import REPO

CLI_SCHEMES = {'file', 'redis', 'redis+cluster', 'endpoint', 'ucx', 'ofi', 'margo', 'daos'}


def test_every_cli_scheme_is_registered():
    assert CLI_SCHEMES <= set(proxystore_rs.schemes()), proxystore_rs.schemes()


def round_trip(url: str) -> None:
    c = RustConnector.from_url(url)
    try:
        assert c.kind == url.split('://')[0]
        key = c.put(b'x' * 4096)
        assert bytes(c.get(key)) == b'x' * 4096
        assert c.exists(key)
        c.evict(key)
        assert not c.exists(key)
        again = RustConnector.from_config(c.config())
        assert again.kind == c.kind
        again.close()
    finally:
        c.close()


def test_file_url(tmp_path):
    round_trip(f'file://{tmp_path}/store')


def test_redis_url(redis_server):
    host, port = redis_server
    round_trip(f'redis://{host}:{port}/0')


def test_ucx_url(ucx_server):
    round_trip(f'ucx://{ucx_server}')


def test_ofi_url(ofi_server):
    round_trip(f'ofi://{ofi_server}')


# Margo's client loads Margo when it first needs the fabric, after reaching
# its server: with no server, the error names the server it could not reach.
@pytest.mark.parametrize(('scheme', 'library', 'url', 'missing'), [
    ('margo', 'margo', 'margo://127.0.0.1:1',
     ('Margo is not available', 'object server 127.0.0.1:1')),
    ('daos', 'daos', 'daos://pool/container', ('DAOS is not available',)),
])
def test_runtime_loaded_schemes(scheme, library, url, missing):
    given = os.environ.get(f'PROXYSTORE_{scheme.upper()}_URL')
    if ctypes.util.find_library(library) is not None:
        if not given:
            pytest.skip(f'lib{library} is installed: set PROXYSTORE_{scheme.upper()}_URL '
                        f'to a running service to test {scheme}://')
        round_trip(given)
        return
    with pytest.raises(ProxyStoreRsError) as e:
        RustConnector.from_url(url).put(b'x')
    assert any(m in str(e.value) for m in missing), e.value
    assert 'unsupported store URL scheme' not in str(e.value), e.value
