"""The Python ProxyStore's side of tests/pydaos_interop.rs.

Runs proxystore_ex.connectors.daos.DAOSConnector (over pydaos) against the
same pool, container and namespace as the Rust test:

  peer.py put POOL CONT NS DIR      put each file of DIR (sorted by name);
                                    result: {"keys": [[NAME, KEY], ...]}
  peer.py get POOL CONT NS DIR KEY...  get each key; write its value to
                                    DIR/<index>; result: {"missing": [index, ...]}
  peer.py evict POOL CONT NS KEY    evict the key; result: {}
  peer.py exists POOL CONT NS KEY   result: {"exists": true or false}

The result is one line `RESULT <json>` on standard output, the only line
the test reads: libdaos may print its own lines there (e.g. when it cannot
raise the open-file limit).
"""

from __future__ import annotations

import json
import os
import sys

from proxystore_ex.connectors.daos import DAOSConnector
from proxystore_ex.connectors.daos import DAOSKey


def main(argv: list[str]) -> int:
    op, pool, cont, ns = argv[:4]
    rest = argv[4:]
    connector = DAOSConnector(pool, cont, ns)
    key = lambda k: DAOSKey(pool, cont, ns, k)  # noqa: E731
    result: dict[str, object] = {}
    if op == 'put':
        (folder,) = rest
        keys = []
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), 'rb') as f:
                data = f.read()
            k = connector.put(data)
            keys.append([name, k.dict_key])
        result['keys'] = keys
    elif op == 'get':
        folder, *keys = rest
        missing = []
        for i, k in enumerate(keys):
            value = connector.get(key(k))
            if value is None:
                missing.append(i)
                continue
            with open(os.path.join(folder, str(i)), 'wb') as f:
                f.write(bytes(value))
        result['missing'] = missing
    elif op == 'evict':
        connector.evict(key(rest[0]))
    elif op == 'exists':
        result['exists'] = bool(connector.exists(key(rest[0])))
    else:
        print(f'unknown operation {op}', file=sys.stderr)
        return 2
    # Close the dictionary, then the container, before the interpreter
    # exits: left to the exit's garbage collection, pydaos (DAOS 2.6.4) may
    # close a dictionary after its client has shut down, and abort.
    connector._dict = None
    connector._container = None
    print('RESULT', json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
