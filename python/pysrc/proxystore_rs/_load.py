"""Load the native extension, finding UCX at run time.

``_native`` links UCX (``libucp.so.0``). The system's UCX is found by the
dynamic loader as usual (``apt-get install libucx0``, ``LD_LIBRARY_PATH``);
if it is missing, the UCX of the ``libucx`` wheels (``pip install
libucx-cu12``, what UCX-Py and UCXX use) is loaded from the Python
environment; if neither is there, the import fails with an ``ImportError``
that says what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_UCX_HINT = (
    'proxystore_rs needs the UCX libraries (libucp.so.0, libucs.so.0, libuct.so.0) '
    'at run time and none were found: install the system package (Debian/Ubuntu: '
    'apt-get install libucx0; RHEL: dnf install ucx), or the libucx wheel into this '
    'environment (pip install libucx-cu12), or put the lib/ directory of a UCX '
    'installation on LD_LIBRARY_PATH'
)


def _is_missing_ucx(e: ImportError) -> bool:
    return 'libuc' in str(e)


def load_native() -> ModuleType:
    """``proxystore_rs._native``, with UCX found as the module docs say."""
    try:
        return importlib.import_module('proxystore_rs._native')
    except ImportError as e:
        if not _is_missing_ucx(e):
            raise
        first = e
    try:
        import libucx  # type: ignore[import-not-found]

        libucx.load_library()
    except Exception as e:  # noqa: BLE001 (no wheel, or it failed to load)
        raise ImportError(f'{_UCX_HINT} ({first}; libucx wheel: {e})') from first
    try:
        return importlib.import_module('proxystore_rs._native')
    except ImportError as e:
        raise ImportError(f'{_UCX_HINT} ({e})') from first
