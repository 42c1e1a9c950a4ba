"""The Python ProxyStore's side of tests/pydaos_interop.rs.

Runs proxystore_ex.connectors.daos.DAOSConnector (over pydaos) against the
same pool, container and namespace as the Rust test:

  peer.py put POOL CONT NS DIR      put each file of DIR (sorted by name);
                                    print one line per file: NAME KEY
  peer.py get POOL CONT NS DIR KEY...  get each key; write its value to
                                    DIR/<index>, or print "missing <index>"
  peer.py evict POOL CONT NS KEY    evict the key
  peer.py exists POOL CONT NS KEY   print True or False
"""

from __future__ import annotations

import os
import sys

from proxystore_ex.connectors.daos import DAOSConnector
from proxystore_ex.connectors.daos import DAOSKey


def main(argv: list[str]) -> int:
    op, pool, cont, ns = argv[:4]
    rest = argv[4:]
    connector = DAOSConnector(pool, cont, ns)
    key = lambda k: DAOSKey(pool, cont, ns, k)  # noqa: E731
    if op == 'put':
        (folder,) = rest
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), 'rb') as f:
                data = f.read()
            k = connector.put(data)
            print(name, k.dict_key, flush=True)
    elif op == 'get':
        folder, *keys = rest
        for i, k in enumerate(keys):
            value = connector.get(key(k))
            if value is None:
                print('missing', i, flush=True)
                continue
            with open(os.path.join(folder, str(i)), 'wb') as f:
                f.write(bytes(value))
    elif op == 'evict':
        connector.evict(key(rest[0]))
    elif op == 'exists':
        print(connector.exists(key(rest[0])), flush=True)
    else:
        print(f'unknown operation {op}', file=sys.stderr)
        return 2
    # Close the dictionary, then the container, before the interpreter
    # exits: left to the exit's garbage collection, pydaos (DAOS 2.6.4) may
    # close a dictionary after its client has shut down, and abort.
    connector._dict = None
    connector._container = None
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
