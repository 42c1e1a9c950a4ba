"""A Python ProxyStore StreamConsumer of a stream a Rust producer writes.

    stream_consume.py SHIM PORT TOPIC

Prints `ready` once subscribed, then one JSON line: per item, its metadata,
whether it came as a proxy, and whether its bytes are `obj(i)` exactly.
"""

import json
import sys
import warnings

warnings.simplefilter('ignore')

from proxystore.proxy import Proxy, extract  # noqa: E402
from proxystore.stream import StreamConsumer  # noqa: E402
from streamlib import obj, subscriber  # noqa: E402

shim, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sub = subscriber(shim, port, topic)
print('ready', flush=True)
out = []
with StreamConsumer(sub) as consumer:
    for meta, item in consumer.iter_with_metadata():
        proxied = type(item) is Proxy
        value = extract(item) if proxied else item
        ok = type(value) is bytes and value == obj(meta['i'])
        out.append({'meta': meta, 'proxy': proxied, 'ok': ok, 'len': len(value)})
print(json.dumps(out), flush=True)
