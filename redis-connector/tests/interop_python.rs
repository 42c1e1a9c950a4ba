//! Interoperability with the real Python ProxyStore 1.1.0, through Redis and
//! through the file connector: objects stored by Python are read here from
//! their keys, and objects stored here are read by Python's `Store.get`.
//!
//! The Python side runs in the virtual environment of [`common::python`].

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::RedisServer;
use common::python::{python, run};
use proxy_core::{Bytes, FileConnector, FileKey, Key, NdArray, Store};
use redis_connector::RedisKey;

/// Python: store a fixed set of objects; print {name: key string}.
const PY_PUT: &str = r#"
import sys, json
import numpy as np
from proxystore.store import Store
kind, arg = sys.argv[1], sys.argv[2]
if kind == 'redis':
    from proxystore.connectors.redis import RedisConnector
    conn = RedisConnector('127.0.0.1', int(arg))
else:
    from proxystore.connectors.file import FileConnector
    conn = FileConnector(arg, clear=False)
store = Store('py-interop', conn, cache_size=0)
objs = {
    'bytes': b'hello \x00\xff world',
    'str': 'h\u00e9llo w\u00f6rld \u2713',
    'f64': np.arange(10, dtype=np.float64) * 0.5,
    'i64': np.arange(-5, 5, dtype=np.int64),
    'f64_2d': np.arange(6, dtype=np.float64).reshape(2, 3),
    'big': bytes(range(256)) * 4096,
}
out = {}
for name, o in objs.items():
    k = store.put(o)
    out[name] = k.redis_key if kind == 'redis' else k.filename
print(json.dumps(out))
"#;

/// Python: get each key given as JSON, compare value and type with what Rust stored.
const PY_GET: &str = r#"
import sys, json
import numpy as np
from proxystore.store import Store
kind, arg, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if kind == 'redis':
    from proxystore.connectors.redis import RedisConnector, RedisKey
    conn = RedisConnector('127.0.0.1', int(arg))
    mk = lambda k: RedisKey(redis_key=k)
else:
    from proxystore.connectors.file import FileConnector, FileKey
    conn = FileConnector(arg, clear=False)
    mk = lambda k: FileKey(filename=k)
store = Store('py-interop', conn, cache_size=0)
expect = {
    'bytes': b'rust \x00\xff bytes',
    'str': 'r\u00fcst \u2713',
    'f64': np.arange(100, dtype=np.float64) / 4,
    'i64': np.arange(-50, 50, dtype=np.int64) * 3,
    'nd': np.arange(12, dtype=np.int32).reshape(3, 4),
    'big': bytes(range(256)) * 4096,
}
res = {}
for name, k in keys.items():
    v = store.get(mk(k))
    e = expect[name]
    if isinstance(e, np.ndarray):
        ok = isinstance(v, np.ndarray) and v.dtype == e.dtype and v.shape == e.shape and np.array_equal(v, e)
    else:
        ok = type(v) is type(e) and v == e
    res[name] = 'ok' if ok else 'mismatch: %s %.200r' % (type(v).__name__, v)
missing = store.get(mk(keys['bytes'][:-4] + '0000'))
res['missing'] = 'ok' if missing is None else 'not None: %r' % (missing,)
print(json.dumps(res))
"#;

fn py_put(kind: &str, arg: &str) -> BTreeMap<String, String> {
    let out = run(
        Command::new(python()).args(["-c", PY_PUT, kind, arg]),
        "Python ProxyStore put",
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad output {out:?}: {e}"))
}

fn py_get(kind: &str, arg: &str, keys: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let json = serde_json::to_string(keys).unwrap();
    let out = run(
        Command::new(python()).args(["-c", PY_GET, kind, arg, &json]),
        "Python ProxyStore get",
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad output {out:?}: {e}"))
}

/// Read what Python stored (keys by name) through `store`.
fn check_python_objects(
    store: &Store,
    keys: &BTreeMap<String, String>,
    to_key: impl Fn(&str) -> Key,
) {
    let k = |n: &str| to_key(&keys[n]);
    assert_eq!(
        store.get::<Bytes>(&k("bytes")).unwrap().unwrap(),
        Bytes::from_static(b"hello \x00\xff world")
    );
    assert_eq!(
        store.get::<String>(&k("str")).unwrap().unwrap(),
        "h\u{e9}llo w\u{f6}rld \u{2713}"
    );
    assert_eq!(
        store.get::<Vec<f64>>(&k("f64")).unwrap().unwrap(),
        (0..10).map(|i| i as f64 * 0.5).collect::<Vec<_>>()
    );
    assert_eq!(
        store.get::<Vec<i64>>(&k("i64")).unwrap().unwrap(),
        (-5..5).collect::<Vec<i64>>()
    );
    let a = store.get::<NdArray>(&k("f64_2d")).unwrap().unwrap();
    assert_eq!(
        (a.descr.as_str(), a.shape.as_slice(), a.fortran_order),
        ("<f8", &[2usize, 3][..], false)
    );
    assert_eq!(
        a.to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    let big: Vec<u8> = (0..256 * 4096).map(|i| (i % 256) as u8).collect();
    assert_eq!(
        store.get::<Bytes>(&k("big")).unwrap().unwrap(),
        Bytes::from(big)
    );
    // A wrong type is an error, not a wrong value.
    assert!(store.get::<String>(&k("bytes")).is_err());
}

/// Store the objects Python's PY_GET expects; returns {name: key}.
fn put_rust_objects(store: &Store) -> BTreeMap<String, Key> {
    let nd = NdArray {
        descr: "<i4".into(),
        shape: vec![3, 4],
        fortran_order: false,
        data: Bytes::from(
            (0..12i32)
                .flat_map(|i| i.to_le_bytes())
                .collect::<Vec<u8>>(),
        ),
    };
    let big: Vec<u8> = (0..256 * 4096).map(|i| (i % 256) as u8).collect();
    BTreeMap::from([
        (
            "bytes".to_string(),
            store
                .put(&Bytes::from_static(b"rust \x00\xff bytes"))
                .unwrap(),
        ),
        (
            "str".to_string(),
            store.put(&"r\u{fc}st \u{2713}".to_string()).unwrap(),
        ),
        (
            "f64".to_string(),
            store
                .put(&(0..100).map(|i| i as f64 / 4.0).collect::<Vec<f64>>())
                .unwrap(),
        ),
        (
            "i64".to_string(),
            store
                .put(&(-50..50).map(|i| i * 3).collect::<Vec<i64>>())
                .unwrap(),
        ),
        ("nd".to_string(), store.put(&nd).unwrap()),
        ("big".to_string(), store.put(&Bytes::from(big)).unwrap()),
    ])
}

fn assert_all_ok(res: &BTreeMap<String, String>, n: usize) {
    assert_eq!(res.len(), n + 1, "{res:?}");
    for (name, r) in res {
        assert_eq!(r, "ok", "Python read of {name}");
    }
}

#[test]
fn redis_python_to_rust_and_back() {
    let server = RedisServer::start();
    // No prefix: the Python layout (the key name is the UUID string).
    let store = Store::builder("rs-interop", server.builder().build().unwrap())
        .cache_bytes(0)
        .build()
        .unwrap();

    let keys = py_put("redis", &server.port.to_string());
    check_python_objects(&store, &keys, |s| {
        RedisKey::from_redis_key(s).unwrap().into()
    });

    let ours = put_rust_objects(&store);
    let names: BTreeMap<String, String> = ours
        .iter()
        .map(|(n, k)| (n.clone(), RedisKey::from_key(k).unwrap().redis_key()))
        .collect();
    let res = py_get("redis", &server.port.to_string(), &names);
    assert_all_ok(&res, ours.len());
}

#[test]
fn file_python_to_rust_and_back() {
    let dir = std::env::temp_dir().join(format!("proxystore-rs-interop-{}", uuid::Uuid::new_v4()));
    let store = Store::builder("rs-interop-file", FileConnector::new(&dir).unwrap())
        .cache_bytes(0)
        .build()
        .unwrap();
    let d = dir.to_str().unwrap();

    let keys = py_put("file", d);
    check_python_objects(&store, &keys, |s| FileKey::from_filename(s).unwrap().into());

    let ours = put_rust_objects(&store);
    let names: BTreeMap<String, String> = ours
        .iter()
        .map(|(n, k)| (n.clone(), k.decode::<FileKey>("file").unwrap().filename()))
        .collect();
    let res = py_get("file", d, &names);
    assert_all_ok(&res, ours.len());
    std::fs::remove_dir_all(&dir).ok();
}
