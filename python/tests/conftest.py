"""Fixtures: real services on loopback, started and stopped by the tests.

- ``redis_server``: a ``redis-server`` on a free port (``$REDIS_SERVER`` or PATH);
- ``ucx_server``: a ``proxystore-ucx-server`` (``$PROXYSTORE_UCX_SERVER``, else
  ``target/release`` or ``target/debug`` of this repository) on a free port;
- ``ofi_server``: a ``proxystore-ofi-server`` over libfabric ``shm`` (found the
  same way, ``$PROXYSTORE_OFI_SERVER``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# UCX over shared memory unless the caller chose (the server gets the same).
os.environ.setdefault('UCX_TLS', 'shm,cma,self')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def redis_server():
    exe = os.environ.get('REDIS_SERVER') or shutil.which('redis-server')
    if exe is None:
        pytest.fail('redis-server not found (install redis-server: scripts/setup.sh)')
    port = free_port()
    proc = subprocess.Popen(
        [exe, '--port', str(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
         '--enable-debug-command', 'local'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.2) as s:
                s.sendall(b'PING\r\n')
                if s.recv(16).startswith(b'+PONG'):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail('redis-server did not start')
    yield ('127.0.0.1', port)
    proc.terminate()
    proc.wait(10)


def built_binary(name: str, env: str, build: str) -> str:
    """``$env``, else ``name`` in ``target/release`` or ``target/debug``."""
    given = os.environ.get(env)
    if given:
        return given
    for profile in ('release', 'debug'):
        p = REPO / 'target' / profile / name
        if p.exists():
            return str(p)
    pytest.fail(f'{name} not built: {build}')


def ucx_server_binary() -> str:
    return built_binary(
        'proxystore-ucx-server', 'PROXYSTORE_UCX_SERVER',
        'cargo build --release -p ucx-connector --bins',
    )


@pytest.fixture(scope='session')
def ucx_server(tmp_path_factory):
    log = tmp_path_factory.mktemp('ucx') / 'server.log'
    env = dict(os.environ)
    env.setdefault('UCX_TLS', 'shm,cma,self')
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [ucx_server_binary(), '--listen', '127.0.0.1:0', '--idle-exit', '600'],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    addr = None
    deadline = time.time() + 20
    while time.time() < deadline and addr is None:
        for line in log.read_text().splitlines():
            if line.startswith('LISTEN '):
                addr = line.split()[1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if addr is None:
        proc.kill()
        pytest.fail(f'proxystore-ucx-server did not start: {log.read_text()}')
    yield addr
    proc.terminate()
    proc.wait(10)


def start_python(code: str) -> subprocess.Popen:
    """Start ``code`` in a new Python process (this interpreter), its
    stdin, stdout and stderr piped."""
    env = dict(os.environ)
    env.setdefault('UCX_TLS', 'shm,cma,self')
    return subprocess.Popen(
        [sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env,
    )


def run_python(code: str, stdin: bytes = b'', timeout: float = 60) -> bytes:
    """Run ``code`` in a new Python process (this interpreter); its stdout."""
    env = dict(os.environ)
    env.setdefault('UCX_TLS', 'shm,cma,self')
    r = subprocess.run(
        [sys.executable, '-c', code], input=stdin, capture_output=True, timeout=timeout, env=env,
    )
    if r.returncode != 0:
        raise AssertionError(f'child failed ({r.returncode}): {r.stderr.decode()}')
    return r.stdout


@pytest.fixture(params=['file', 'redis', 'ucx'])
def connector(request, tmp_path):
    """One of our connectors of each kind (file, Redis, UCX), closed after the test."""
    from proxystore_rs import FileConnector, RedisConnector, UcxConnector

    kind = request.param
    if kind == 'file':
        c = FileConnector(str(tmp_path / 'store'))
    elif kind == 'redis':
        host, port = request.getfixturevalue('redis_server')
        c = RedisConnector(host, port)
    else:
        c = UcxConnector(request.getfixturevalue('ucx_server'))
    yield c
    c.close()


@pytest.fixture(scope='session')
def ofi_server(tmp_path_factory):
    exe = os.environ.get('PROXYSTORE_OFI_SERVER')
    if not exe:
        found = [REPO / 'target' / p / 'proxystore-ofi-server' for p in ('release', 'debug')]
        found = [str(p) for p in found if p.exists()]
        exe = found[0] if found else shutil.which('proxystore-ofi-server')
    if not exe:
        pytest.skip('needs proxystore-ofi-server: cargo build --release -p ofi-connector --bins')
    log = tmp_path_factory.mktemp('ofi') / 'server.log'
    env = dict(os.environ)
    env.setdefault('FI_PROVIDER', 'shm')
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [exe, '--listen', '127.0.0.1:0', '--idle-exit', '600'],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    addr = None
    deadline = time.time() + 30
    while time.time() < deadline and addr is None and proc.poll() is None:
        addr = next((ln.split()[1] for ln in log.read_text().splitlines()
                     if ln.startswith('LISTEN ')), None)
        time.sleep(0.05)
    if addr is None:
        proc.kill()
        pytest.fail(f'proxystore-ofi-server did not start: {log.read_text()}')
    os.environ.setdefault('FI_PROVIDER', 'shm')
    yield addr
    proc.terminate()
    proc.wait(10)
