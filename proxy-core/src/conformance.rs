//! The connector conformance suite: the behaviour every [`Connector`] in this
//! repository must show, run unchanged by each connector's tests.
//!
//! Use it through [`conformance_suite!`](crate::conformance_suite), which
//! expands to one `#[test]` per case:
//!
//! ```ignore
//! fn setup() -> MyConnector { MyConnector::new(/* a fresh namespace */).unwrap() }
//! fn register() { my_connector::register(); }
//! proxy_core::conformance_suite!(setup = setup, register = register);
//! ```
//!
//! `setup` is called once per case and should return a connector over a fresh
//! namespace (directory, key prefix, server). `register` must make every
//! connector kind the configuration needs rebuildable in a fresh process: the
//! cross-process case re-runs the test binary as a child that deserializes a
//! proxy and resolves it.
//!
//! Differences between connectors come from [`Capabilities`] and are checked,
//! not skipped: e.g. a connector without `cross_process` must make the child's
//! resolve fail with a clear error (not hang, not panic).
//!
//! The suite is not part of the stable API. It writes and evicts objects
//! through the given connector.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use bytes::Bytes;

use crate::connector::{Capabilities, ConnectorConfig, DynConnector, Payload};
use crate::error::Error;
use crate::key::Key;
use crate::proxy::Proxy;
use crate::registry;
use crate::store::Store;

/// Environment variable carrying the hex-encoded proxy to the child process.
pub const CHILD_ENV: &str = "PROXYSTORE_CONFORMANCE_CHILD";
const RESULT_TAG: &str = "@@proxystore-conformance:";

/// What each case gets: a fresh connector and how to re-run this test binary
/// as a child.
#[derive(Debug)]
pub struct Ctx {
    /// The connector under test.
    pub connector: DynConnector,
    /// Its declared capabilities.
    pub caps: Capabilities,
    child_test: String,
}

impl Ctx {
    /// Used by [`conformance_suite!`](crate::conformance_suite).
    pub fn new(connector: DynConnector, child_test: String) -> Ctx {
        let caps = connector.capabilities();
        Ctx {
            connector,
            caps,
            child_test,
        }
    }

    fn store(&self, case: &str) -> Store {
        Store::builder(
            format!("conformance-{case}-{}", uuid::Uuid::new_v4()),
            self.connector.clone(),
        )
        .cache_bytes(0)
        .build()
        .expect("build store")
    }
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn checksum(b: &[u8]) -> u64 {
    // FNV-1a over 8-byte words (fast enough for 256 MiB in a test).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for &x in chunks.remainder() {
        h = (h ^ x as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// put → get returns the same bytes; a multi-part payload is stored as its
/// concatenation; exists is true.
pub fn put_get_roundtrip(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(10_000, 1);
    let k = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&data[..]));
    assert!(c.exists(&k).unwrap());
    let parts = Payload::new()
        .with(&b"BS\n"[..])
        .with(data.slice(..100))
        .with(data.slice(100..));
    let k2 = c.put(parts).unwrap();
    let got = c.get(&k2).unwrap().unwrap();
    assert_eq!(&got[..3], b"BS\n");
    assert_eq!(&got[3..], &data[..]);
    assert_ne!(k, k2, "every put mints a new key");
    c.evict(&k).unwrap();
    c.evict(&k2).unwrap();
}

/// A key whose object was never stored or was evicted gets `None`, exists is
/// false, and evicting it again is fine.
pub fn missing_key(ctx: &Ctx) {
    let c = &ctx.connector;
    let k = c.put(Payload::from(pattern(100, 2))).unwrap();
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    assert!(!c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get_batch(std::slice::from_ref(&k)).unwrap(), vec![None]);
    if let Some(d) = c.as_deferrable() {
        let fresh = d.new_key().unwrap();
        assert_eq!(c.get(&fresh).unwrap(), None);
        assert!(!c.exists(&fresh).unwrap());
        d.set(&fresh, Payload::from(pattern(10, 3))).unwrap();
        assert_eq!(c.get(&fresh).unwrap(), Some(pattern(10, 3)));
        c.evict(&fresh).unwrap();
    }
}

/// Batches keep order, mix in missing keys, and match single gets.
pub fn batch_order(ctx: &Ctx) {
    let c = &ctx.connector;
    let items: Vec<Bytes> = (0..20).map(|i| pattern(100 + i * 37, i as u8)).collect();
    let keys = c
        .put_batch(items.iter().cloned().map(Payload::from).collect())
        .unwrap();
    assert_eq!(keys.len(), items.len());
    let gone = keys[5].clone();
    c.evict(&gone).unwrap();
    let mut order: Vec<usize> = (0..20).rev().collect();
    order.swap(3, 11);
    let ask: Vec<Key> = order.iter().map(|&i| keys[i].clone()).collect();
    let got = c.get_batch(&ask).unwrap();
    assert_eq!(got.len(), ask.len());
    for (j, &i) in order.iter().enumerate() {
        if i == 5 {
            assert_eq!(got[j], None);
        } else {
            assert_eq!(got[j].as_ref(), Some(&items[i]), "item {i}");
        }
    }
    assert!(c.put_batch(vec![]).unwrap().is_empty());
    assert!(c.get_batch(&[]).unwrap().is_empty());
    for k in &keys {
        c.evict(k).unwrap();
    }
}

/// The empty object round-trips (and is not confused with a missing one).
pub fn empty_object(ctx: &Ctx) {
    let c = &ctx.connector;
    let k = c.put(Payload::new()).unwrap();
    assert_eq!(c.get(&k).unwrap(), Some(Bytes::new()));
    assert!(c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
}

/// A 256 MiB object round-trips intact (or, if the connector declares a
/// smaller `max_object_size`, is refused with `TooLarge` and nothing is stored).
pub fn large_object(ctx: &Ctx) {
    const SIZE: usize = 256 << 20;
    let c = &ctx.connector;
    let data = pattern(SIZE, 9);
    let sum = checksum(&data);
    match ctx.caps.max_object_size {
        Some(limit) if (SIZE as u64) > limit => {
            let err = c.put(Payload::from(data)).unwrap_err();
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        }
        _ => {
            let k = c.put(Payload::from(data)).unwrap();
            let got = c.get(&k).unwrap().expect("large object stored");
            assert_eq!(got.len(), SIZE);
            assert_eq!(checksum(&got), sum);
            drop(got);
            c.evict(&k).unwrap();
        }
    }
}

/// Many threads put, get, check and evict at once; nothing is lost or mixed up.
pub fn concurrent_threads(ctx: &Ctx) {
    let threads = 8;
    let per = 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = &ctx.connector;
            s.spawn(move || {
                let mut kept = Vec::new();
                for i in 0..per {
                    let data = pattern(64 + (i * 13 + t * 7) % 5000, (t * per + i) as u8);
                    let k = c.put(Payload::from(data.clone())).unwrap();
                    assert_eq!(c.get(&k).unwrap().as_ref(), Some(&data));
                    if i % 2 == 0 {
                        c.evict(&k).unwrap();
                        assert_eq!(c.get(&k).unwrap(), None);
                    } else {
                        kept.push((k, data));
                    }
                }
                for (k, data) in &kept {
                    assert_eq!(c.get(k).unwrap().as_ref(), Some(data), "object lost");
                    c.evict(k).unwrap();
                }
            });
        }
    });
}

/// Keys survive serde (postcard and JSON); the configuration round-trips
/// (JSON, TOML, postcard) and rebuilds a connector that reads the same objects
/// (where the connector is reachable from a rebuilt instance at all).
pub fn key_and_config_serde(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(777, 4);
    let k = c.put(Payload::from(data.clone())).unwrap();
    let k_pc: Key = postcard::from_bytes(&postcard::to_allocvec(&k).unwrap()).unwrap();
    let k_js: Key = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
    assert_eq!(k_pc, k);
    assert_eq!(k_js, k);
    let text = c.key_to_string(&k).unwrap();
    assert_eq!(
        c.parse_key(&text).unwrap(),
        k,
        "text form {text:?} round-trips"
    );
    assert!(c.parse_key("not a key at all").is_err());
    assert_eq!(c.get(&k_pc).unwrap(), Some(data.clone()));

    let cfg = c.config();
    let via_json: ConnectorConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    let via_pc: ConnectorConfig =
        postcard::from_bytes(&postcard::to_allocvec(&cfg).unwrap()).unwrap();
    assert_eq!(via_json, cfg);
    assert_eq!(via_pc, cfg);
    let store_cfg = crate::StoreConfig::new("conformance-toml", cfg.clone());
    let toml = store_cfg.to_toml_string().unwrap();
    assert_eq!(
        crate::StoreConfig::from_toml_str(&toml).unwrap(),
        store_cfg,
        "TOML:\n{toml}"
    );

    let rebuilt = registry::connector_from_config(&cfg)
        .expect("connector rebuilds from its config in this process");
    assert_eq!(rebuilt.kind(), c.kind());
    assert_eq!(rebuilt.config(), cfg, "config of the rebuilt connector");
    assert_eq!(rebuilt.get(&k).unwrap(), Some(data));
    c.evict(&k).unwrap();
}

/// Malformed keys are clear errors on every operation (never a panic), and
/// nothing else in the store is disturbed.
pub fn bad_keys(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(1000, 5);
    let good = c.put(Payload::from(data.clone())).unwrap();
    let bad = [
        Key::from_bytes(Vec::new()),
        Key::from_bytes(vec![0xff; 3]),
        Key::from_bytes(vec![0x42; 300]),
    ];
    for k in &bad {
        assert!(
            matches!(c.get(k), Err(Error::InvalidKey { .. })),
            "get {k:?}"
        );
        assert!(
            matches!(c.exists(k), Err(Error::InvalidKey { .. })),
            "exists {k:?}"
        );
        assert!(
            matches!(c.evict(k), Err(Error::InvalidKey { .. })),
            "evict {k:?}"
        );
        assert!(
            c.get_batch(&[good.clone(), k.clone()]).is_err(),
            "get_batch {k:?}"
        );
    }
    assert_eq!(
        c.get(&good).unwrap(),
        Some(data),
        "a bad key disturbed another object"
    );
    c.evict(&good).unwrap();
}

/// Through a [`Store`]: a value that is not a valid encoded object is an error
/// naming the key; a key for a deleted object is `MissingKey` when proxied.
pub fn store_bad_objects(ctx: &Ctx) {
    let store = ctx.store("bad-objects");
    let junk = store
        .put_encoded(Payload::from(Bytes::from_static(b"\x00\x01garbage")))
        .unwrap();
    let err = store.get::<Bytes>(&junk).unwrap_err();
    assert!(matches!(err, Error::Decode { key: Some(_), .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&store.connector().key_to_string(&junk).unwrap()),
        "{err}"
    );
    let good = store.put(&"kept".to_string()).unwrap();
    assert!(
        store.get::<Vec<f64>>(&good).is_err(),
        "wrong type is an error"
    );
    let p: Proxy<String> = store.proxy_from_key(junk.clone(), false);
    assert!(p.resolve().is_err());
    store.evict(&junk).unwrap();
    let gone: Proxy<String> = store.proxy_from_key(junk, false);
    assert!(matches!(gone.resolve(), Err(Error::MissingKey { .. })));
    assert_eq!(store.get::<String>(&good).unwrap().as_deref(), Some("kept"));
    store.evict(&good).unwrap();
}

/// A proxy made here is resolved in another OS process (this test binary run
/// again as a child). With `cross_process`, the child gets the same bytes;
/// without it, the child reports a clear error.
pub fn cross_process_resolve(ctx: &Ctx) {
    let store = ctx.store("xproc");
    let data = pattern(1 << 20, 6);
    let p = store.proxy(data.clone()).unwrap();
    let wire = p.to_bytes().unwrap();
    eprintln!(
        "serialized proxy ({} connector): {} bytes",
        store.connector().kind(),
        wire.len()
    );
    let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let out = Command::new(exe)
        .args([
            "--exact",
            &ctx.child_test,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, hex)
        .stdin(Stdio::null())
        .output()
        .expect("spawn child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(RESULT_TAG).map(|(_, r)| r.trim().to_string()))
        .unwrap_or_else(|| {
            panic!(
                "child printed no result (status {}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!("child answered in {:?}: {line}", start.elapsed());
    if ctx.caps.cross_process {
        assert_eq!(
            line,
            format!("OK len={} sum={}", data.len(), checksum(&data))
        );
        assert!(out.status.success());
    } else {
        assert!(line.starts_with("ERR "), "{line}");
        assert!(line.len() > 10, "error message is empty");
    }
    store.evict(p.key()).unwrap();
}

/// The child side of [`cross_process_resolve`]: does nothing unless
/// [`CHILD_ENV`] is set.
pub fn child_entry(register: fn()) {
    let Ok(hex) = std::env::var(CHILD_ENV) else {
        return;
    };
    register();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let result = Proxy::<Bytes>::from_bytes(&bytes).and_then(|p| {
        let b = p.resolve()?;
        Ok(format!("OK len={} sum={}", b.len(), checksum(b)))
    });
    let line = result.unwrap_or_else(|e| format!("ERR {e}"));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{RESULT_TAG} {line}").unwrap();
    out.flush().unwrap();
}

/// A store over the connector: typed put/get, proxies that resolve from a
/// deserialized copy in this process, batch proxies, evict-on-resolve.
pub fn store_and_proxy(ctx: &Ctx) {
    let store = ctx.store("proxy");
    let v: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
    let p = store.proxy(v.clone()).unwrap();
    assert!(p.is_resolved());
    let q: Proxy<Vec<f64>> = Proxy::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert!(!q.is_resolved());
    assert_eq!(*q, v);
    let ps = store
        .proxy_batch(
            vec!["a".to_string(), "b".to_string()],
            crate::ProxyOptions::default()
                .evict(true)
                .populate_target(false),
        )
        .unwrap();
    assert_eq!(ps[1].resolve().unwrap(), "b");
    assert!(!store.exists(ps[1].key()).unwrap(), "evicted on resolve");
    assert_eq!(ps[0].resolve().unwrap(), "a");
    let keys: Vec<Key> = ps.iter().map(|p| p.key().clone()).collect();
    assert_eq!(store.get_batch::<String>(&keys).unwrap(), vec![None, None]);
    store.evict(p.key()).unwrap();
    assert!(matches!(
        store
            .proxy_from_key::<Vec<f64>>(p.key().clone(), false)
            .resolve(),
        Err(Error::MissingKey { .. })
    ));
}

/// One `#[test]` per named case (used by [`conformance_suite!`](crate::conformance_suite)).
#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if ::std::env::var_os($crate::conformance::CHILD_ENV).is_some() {
                    return;
                }
                $crate::conformance::$name(&__conformance_ctx());
            }
        )*
    };
}

/// Expand the conformance suite into `#[test]`s in the current module.
///
/// `setup` is a function (or closure) returning a connector (owned or
/// `Arc<dyn Connector>`); `register` is a `fn()` registering every connector
/// kind the child process needs.
#[macro_export]
macro_rules! conformance_suite {
    (setup = $setup:expr, register = $register:expr $(,)?) => {
        fn __conformance_ctx() -> $crate::conformance::Ctx {
            ($register)();
            let path = module_path!();
            let child = match path.split_once("::") {
                Some((_, rest)) => format!("{rest}::conformance_child_entry"),
                None => "conformance_child_entry".to_string(),
            };
            $crate::conformance::Ctx::new($crate::IntoDynConnector::into_dyn(($setup)()), child)
        }

        /// Child side of `cross_process_resolve` (a no-op in normal runs).
        #[test]
        fn conformance_child_entry() {
            $crate::conformance::child_entry($register);
        }

        $crate::__conformance_cases!(
            put_get_roundtrip,
            missing_key,
            batch_order,
            empty_object,
            large_object,
            concurrent_threads,
            key_and_config_serde,
            bad_keys,
            store_bad_objects,
            store_and_proxy,
            cross_process_resolve,
        );
    };
}
