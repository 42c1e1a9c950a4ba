"""A Python ProxyStore StreamProducer of a stream a Rust consumer reads.

    stream_produce.py SHIM PORT TOPIC STORE STORE_ARG STORE_NAME N EVICT [DELAY_S]

STORE is file (STORE_ARG: its directory), redis (STORE_ARG: its port) or
none (objects in the events). Sends obj(0) .. obj(N-1) with metadata
{'i': i, ...} in batches of 2, then the end of stream.
"""

import sys
import time
import warnings

warnings.simplefilter('ignore')

from proxystore.stream import StreamProducer  # noqa: E402
from streamlib import obj, publisher, store  # noqa: E402

shim, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind, arg, name = sys.argv[4], sys.argv[5], sys.argv[6]
n, evict = int(sys.argv[7]), sys.argv[8] == '1'
pub = publisher(shim, port)
if len(sys.argv) > 9:
    time.sleep(float(sys.argv[9]))  # ZeroMQ: let the subscriber connect
producer = StreamProducer(pub, default_store=store(kind, arg, name), batch_size=2)
for i in range(n):
    meta = {'i': i, 'tag': 'py', 'f': 0.5, 'l': [1, 'a', None], 'big': 1 << 40}
    producer.send(topic, obj(i), evict=evict, metadata=meta)
producer.close_topics(topic)
producer.close()
print('sent', n, flush=True)
