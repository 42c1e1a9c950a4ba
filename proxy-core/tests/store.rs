//! Store, proxy, registry and bad-input behaviour (connector-independent).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Error, FileConnector, Key,
    LocalConnector, LockedProxy, Payload, Proxy, ProxyOptions, Store, StoreConfig, stores,
};
use serde::{Deserialize, Serialize};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(format!(
        "proxystore-store-test-{tag}-{}",
        std::process::id()
    ))
}

/// Counts connector gets (to check "resolves exactly once"); forwards every
/// other method.
#[derive(Debug)]
struct Counting {
    inner: LocalConnector,
    gets: AtomicUsize,
}

#[warn(clippy::missing_trait_methods)]
impl Connector for Counting {
    fn kind(&self) -> &'static str {
        "local"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn put(&self, data: Payload) -> proxy_core::Result<Key> {
        self.inner.put(data)
    }
    fn put_batch(&self, data: Vec<Payload>) -> proxy_core::Result<Vec<Key>> {
        self.inner.put_batch(data)
    }
    fn get(&self, key: &Key) -> proxy_core::Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.inner.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> proxy_core::Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    fn exists(&self, key: &Key) -> proxy_core::Result<bool> {
        self.inner.exists(key)
    }
    fn evict(&self, key: &Key) -> proxy_core::Result<()> {
        self.inner.evict(key)
    }
    fn close(&self) -> proxy_core::Result<()> {
        self.inner.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.inner.config()
    }
    fn key_to_string(&self, key: &Key) -> proxy_core::Result<String> {
        self.inner.key_to_string(key)
    }
    fn parse_key(&self, s: &str) -> proxy_core::Result<Key> {
        self.inner.parse_key(s)
    }
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> proxy_core::Result<bool> {
        self.inner.wait_for(key, timeout)
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        self.inner.as_deferrable()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sim {
    step: u64,
    grid: Vec<f32>,
    name: String,
}

#[test]
fn proxy_resolves_exactly_once_across_threads() {
    let conn = Arc::new(Counting {
        inner: LocalConnector::new(),
        gets: AtomicUsize::new(0),
    });
    let store = Store::builder("once", conn.clone() as proxy_core::DynConnector)
        .cache_bytes(0)
        .build()
        .unwrap();
    let sim = Sim {
        step: 3,
        grid: vec![1.5; 100],
        name: "x".into(),
    };
    let p = store
        .proxy_with(sim.clone(), ProxyOptions::default().populate_target(false))
        .unwrap();
    assert!(!p.is_resolved());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(p.grid.len(), 100));
        }
    });
    assert_eq!(conn.gets.load(Ordering::SeqCst), 1);
    assert_eq!(*p, sim);
    assert_eq!(p.into_inner().unwrap(), sim);
}

#[test]
fn proxy_deserialized_in_its_process_uses_its_store() {
    let conn = Arc::new(Counting {
        inner: LocalConnector::new(),
        gets: AtomicUsize::new(0),
    });
    // Not registered: the store is found because its proxies were serialized.
    let store = Store::builder("shared-here", conn.clone() as proxy_core::DynConnector)
        .build()
        .unwrap();
    let p = store
        .proxy_with(7u64, ProxyOptions::default().populate_target(false))
        .unwrap();
    let wire = p.to_bytes().unwrap();
    for _ in 0..3 {
        let q: Proxy<u64> = Proxy::from_bytes(&wire).unwrap();
        assert_eq!(*q, 7);
        assert!(
            std::ptr::eq(
                q.factory().store().unwrap().connector().as_ref() as *const _ as *const u8,
                conn.as_ref() as *const _ as *const u8
            ),
            "resolved against the producing store"
        );
    }
    assert_eq!(
        conn.gets.load(Ordering::SeqCst),
        1,
        "one store, one cache: later resolves hit the producer's cache"
    );
    // Once closed, that store is never handed out again.
    store.close().unwrap();
    let q: Proxy<u64> = Proxy::from_bytes(&wire).unwrap();
    let other = q.factory().store().unwrap();
    assert!(!other.is_closed(), "a store rebuilt from the configuration");
    assert!(
        stores::unregister("shared-here").is_some(),
        "and registered"
    );
    other.close().unwrap();
}

#[test]
fn populated_proxy_never_resolves_and_serializes_small() {
    let dir = tmpdir("small");
    let store = Store::new("small-proxy", FileConnector::new(&dir).unwrap()).unwrap();
    let p = store.proxy(Bytes::from(vec![1u8; 10 << 20])).unwrap();
    assert!(p.is_resolved());
    let wire = p.to_bytes().unwrap();
    println!("serialized file-connector proxy: {} bytes", wire.len());
    println!("store config: {:?}", store.config());
    assert!(wire.len() <= 256, "proxy is {} bytes", wire.len());
    let json = serde_json::to_string(&p).unwrap();
    println!("as JSON ({} bytes): {json}", json.len());
    let q: Proxy<Bytes> = serde_json::from_str(&json).unwrap();
    assert_eq!(q.len(), 10 << 20);
    store.evict(p.key()).unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn locked_proxy_refuses_until_unlocked() {
    let store = Store::new("locked", LocalConnector::new()).unwrap();
    let l: LockedProxy<String> = store
        .locked_proxy("secret".to_string(), ProxyOptions::default())
        .unwrap();
    assert!(matches!(l.resolve(), Err(Error::Locked)));
    let wire = postcard::to_allocvec(&l).unwrap();
    let l2: LockedProxy<String> = postcard::from_bytes(&wire).unwrap();
    assert!(matches!(l2.resolve(), Err(Error::Locked)));
    assert_eq!(&*l2.unlock(), "secret");
    assert_eq!(&*l.unlock(), "secret");
}

#[test]
fn typed_batches_and_cache() {
    let store = Store::builder("batches", LocalConnector::new())
        .cache_bytes(1 << 20)
        .build()
        .unwrap();
    let objs: Vec<Vec<i64>> = (0..10).map(|i| vec![i; 100]).collect();
    let keys = store.put_batch(&objs).unwrap();
    let got = store.get_batch::<Vec<i64>>(&keys).unwrap();
    assert_eq!(
        got.into_iter().map(Option::unwrap).collect::<Vec<_>>(),
        objs
    );
    assert!(store.is_cached(&keys[0]), "get fills the cache");
    store.evict(&keys[0]).unwrap();
    assert!(!store.is_cached(&keys[0]));
    assert!(!store.exists(&keys[0]).unwrap());
    assert_eq!(store.get::<Vec<i64>>(&keys[0]).unwrap(), None);
}

#[test]
fn closed_store_is_an_error() {
    let store = Store::new("closing", LocalConnector::new()).unwrap();
    stores::register(&store, false).unwrap();
    assert!(matches!(
        stores::register(&store, false),
        Err(Error::StoreExists(_))
    ));
    assert!(stores::get("closing").is_some());
    let k = store.put(&1u32).unwrap();
    store.close().unwrap();
    store.close().unwrap();
    assert!(stores::get("closing").is_none(), "closing unregisters");
    let again = Store::new("closing", LocalConnector::new()).unwrap();
    stores::register(&again, false).expect("the closed store's name is free");
    assert!(stores::unregister("closing").is_some());
    assert!(matches!(store.get::<u32>(&k), Err(Error::StoreClosed(_))));
    assert!(matches!(store.put(&1u32), Err(Error::StoreClosed(_))));
}

#[test]
fn registry_creates_one_store_under_contention() {
    let dir = tmpdir("race");
    let cfg = StoreConfig::new("race", FileConnector::new(&dir).unwrap().config());
    let stores: Vec<Store> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| stores::get_or_create(&cfg).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in &stores[1..] {
        assert_eq!(s.name(), "race");
        assert!(std::ptr::eq(
            s.connector().as_ref() as *const _ as *const u8,
            stores[0].connector().as_ref() as *const _ as *const u8
        ));
    }
    stores::unregister("race");
    std::fs::remove_dir_all(dir).ok();
}

/// Four "ranks" each with a store named "local" over its own directory: all
/// four proxies resolve in one process, each against its own directory, and
/// a second round reuses the stores built by the first.
#[test]
fn stores_of_one_name_live_side_by_side() {
    let dirs: Vec<_> = (0..4).map(|i| tmpdir(&format!("side-{i}"))).collect();
    let configs: Vec<StoreConfig> = dirs
        .iter()
        .map(|d| StoreConfig::new("side-by-side", FileConnector::new(d).unwrap().config()))
        .collect();
    let wires: Vec<Vec<u8>> = configs
        .iter()
        .enumerate()
        .map(|(i, cfg)| {
            // Built from the configuration and dropped, as in another process.
            let store = Store::from_config(cfg).unwrap();
            let p = store
                .proxy_with(
                    i as u64 * 11,
                    ProxyOptions::default().populate_target(false),
                )
                .unwrap();
            p.to_bytes().unwrap()
        })
        .collect();
    for round in 0..2 {
        let resolved: Vec<(u64, Store)> = wires
            .iter()
            .map(|w| {
                let p: Proxy<u64> = Proxy::from_bytes(w).unwrap();
                let v = *p;
                (v, p.factory().store().unwrap().clone())
            })
            .collect();
        for (i, (v, store)) in resolved.iter().enumerate() {
            assert_eq!(*v, i as u64 * 11, "round {round}, proxy {i}");
            assert_eq!(
                store.config().connector,
                configs[i].connector,
                "round {round}: proxy {i} resolved against its own directory"
            );
        }
    }
    let first = stores::get("side-by-side").expect("the first rebuilt store holds the name");
    assert_eq!(first.config().connector, configs[0].connector);
    assert!(stores::unregister("side-by-side").is_some());
    assert!(stores::get("side-by-side").is_none());
    for d in dirs {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn store_config_toml_roundtrip_and_bad_configs() {
    let dir = tmpdir("toml");
    let store = Store::new("toml", FileConnector::new(&dir).unwrap()).unwrap();
    let toml = store.config().to_toml_string().unwrap();
    println!("{toml}");
    let back = StoreConfig::from_toml_str(&toml).unwrap();
    assert_eq!(&back, store.config());
    let k = store.put(&"v".to_string()).unwrap();
    assert_eq!(
        Store::from_config(&back)
            .unwrap()
            .get::<String>(&k)
            .unwrap()
            .as_deref(),
        Some("v")
    );

    // Malformed configurations: clear errors, no panics.
    let cases = [
        ("name = 'x'", "missing field `connector`"),
        ("name = 'x'\n[connector]\nkind = 'file'\n", "dir"),
        (
            "name = 'x'\n[connector]\nkind = 'file'\noptions = { dir = 5 }\n",
            "invalid type",
        ),
        (
            "name = 'x'\ncache_bytes = -1\n[connector]\nkind = 'local'\n",
            "invalid value: integer `-1`",
        ),
        ("name = [", "TOML"),
    ];
    for (text, want) in cases {
        let r = StoreConfig::from_toml_str(text).and_then(|c| Store::from_config(&c));
        let e = r.expect_err(text).to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let unknown = StoreConfig::new(
        "u",
        ConnectorConfig::new("daos-on-mars", serde_json::json!({})),
    );
    let e = Store::from_config(&unknown).unwrap_err();
    assert!(matches!(e, Error::UnknownConnector { .. }));
    assert!(
        e.to_string().contains("daos-on-mars") && e.to_string().contains("file"),
        "{e}"
    );
    assert_eq!(
        store.get::<String>(&k).unwrap().as_deref(),
        Some("v"),
        "nothing lost"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_proxies_are_clear_errors() {
    let dir = tmpdir("badproxy");
    let store = Store::new("badproxy", FileConnector::new(&dir).unwrap()).unwrap();
    let keep = store.proxy(vec![1.0f64, 2.0]).unwrap();
    let p = store.proxy(vec![3.0f64]).unwrap();

    // A proxy whose store config names an unknown connector.
    let mut v = serde_json::to_value(&p).unwrap();
    v["config"]["connector"]["kind"] = "warp-drive".into();
    v["config"]["name"] = "elsewhere".into();
    println!("{v}");
    let alien: Proxy<Vec<f64>> = serde_json::from_value(v).unwrap();
    let e = alien.resolve().unwrap_err();
    assert!(matches!(e, Error::UnknownConnector { .. }), "{e}");
    println!("unknown connector: {e}");

    // A proxy of the wrong target type.
    let wrong: Proxy<String> = Proxy::from_bytes(&p.to_bytes().unwrap()).unwrap();
    let e = wrong.resolve().unwrap_err();
    assert!(e.to_string().contains("wrong type"), "{e}");
    println!("wrong type: {e}");

    // A proxy for a deleted object.
    store.evict(p.key()).unwrap();
    let gone: Proxy<Vec<f64>> = Proxy::from_bytes(&p.to_bytes().unwrap()).unwrap();
    let e = gone.resolve().unwrap_err();
    assert!(matches!(e, Error::MissingKey { .. }), "{e}");
    println!("deleted: {e}");

    // Truncated and corrupted serialized proxies.
    let wire = keep.to_bytes().unwrap();
    for cut in [0, 1, wire.len() / 2, wire.len() - 1] {
        assert!(
            Proxy::<Vec<f64>>::from_bytes(&wire[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut extra = wire.clone();
    extra.push(0);
    assert!(Proxy::<Vec<f64>>::from_bytes(&extra).is_err());

    // A corrupt object file on disk (truncated by someone else).
    let q = store.proxy(vec![5.0f64; 1000]).unwrap();
    let file = dir.join(
        q.key()
            .decode::<proxy_core::FileKey>("file")
            .unwrap()
            .filename(),
    );
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() / 2]).unwrap();
    let trunc: Proxy<Vec<f64>> = Proxy::from_bytes(&q.to_bytes().unwrap()).unwrap();
    let e = trunc.resolve().unwrap_err();
    assert!(matches!(e, Error::Decode { key: Some(_), .. }), "{e}");
    println!("truncated object: {e}");

    // Nothing else was lost.
    let again: Proxy<Vec<f64>> = Proxy::from_bytes(&wire).unwrap();
    assert_eq!(*again, vec![1.0, 2.0]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
#[should_panic(expected = "failed to resolve")]
fn deref_of_a_failing_proxy_panics_with_the_error() {
    let store = Store::new("deref-panic", LocalConnector::new()).unwrap();
    let k = store.put(&7u64).unwrap();
    store.evict(&k).unwrap();
    let p: Proxy<u64> = store.proxy_from_key(k, false);
    let _ = *p;
}

#[test]
fn deferrable_connectors_set_later() {
    let dir = tmpdir("defer");
    for conn in [
        Arc::new(LocalConnector::new()) as proxy_core::DynConnector,
        Arc::new(FileConnector::new(&dir).unwrap()),
    ] {
        let d = conn.as_deferrable().expect("deferrable");
        let k = d.new_key().unwrap();
        assert!(!conn.exists(&k).unwrap());
        d.set(&k, proxy_core::codec::encode(&"later".to_string()).unwrap())
            .unwrap();
        let store = Store::builder("defer", conn.clone()).build().unwrap();
        assert_eq!(store.get::<String>(&k).unwrap().as_deref(), Some("later"));
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn close_all_closes_registered_and_rebuilt_stores() {
    let registered = Store::new("close-all-registered", LocalConnector::new()).unwrap();
    stores::register(&registered, false).unwrap();
    let dir = tmpdir("close-all");
    let cfg = StoreConfig::new(
        "close-all-rebuilt",
        FileConnector::new(&dir).unwrap().config(),
    );
    let rebuilt = stores::get_or_create(&cfg).unwrap();
    let owned = Store::new("close-all-owned", LocalConnector::new()).unwrap();
    stores::close_all().unwrap();
    assert!(registered.is_closed() && rebuilt.is_closed());
    assert!(
        !owned.is_closed(),
        "a store nobody registered belongs to its owner"
    );
    assert!(stores::get("close-all-registered").is_none());
    assert!(stores::get("close-all-rebuilt").is_none());
    std::fs::remove_dir_all(dir).ok();
}

/// Two stores over one directory stand for two processes: an evict by one is
/// seen by the other's `exists` at once, though its cache still holds the
/// object; with `cache_bytes = 0` (`?cache=0` in a URL) its get misses too.
#[test]
fn exists_sees_evicts_of_other_processes() {
    let dir = tmpdir("other-evicts");
    for (url_query, cached_get) in [("", true), ("?cache=0", false)] {
        let url = format!("file://{}{url_query}", dir.display());
        let cfg = proxy_core::registry::store_config_from_url("evicts", &url).unwrap();
        let here = Store::from_config(&cfg).unwrap();
        let there = Store::from_config(&cfg).unwrap();
        let key = here.put(&vec![7u8; 1000]).unwrap();
        assert_eq!(here.get::<Vec<u8>>(&key).unwrap(), Some(vec![7u8; 1000]));
        assert_eq!(here.is_cached(&key), cached_get, "{url}");
        there.evict(&key).unwrap();
        assert!(
            !here.exists(&key).unwrap(),
            "{url}: exists asks the connector"
        );
        assert_eq!(
            here.get::<Vec<u8>>(&key).unwrap().is_some(),
            cached_get,
            "{url}: only the cache answers a get after the evict"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn producer_evicts_by_proxy() {
    let dir = tmpdir("evict-target");
    let cfg = StoreConfig::new("evict-target", FileConnector::new(&dir).unwrap().config());
    let producer = Store::from_config(&cfg).unwrap();
    let p = producer
        .proxy_with(
            vec![3u8; 100],
            ProxyOptions::default().populate_target(false),
        )
        .unwrap();
    let wire = p.to_bytes().unwrap();
    let consumer: Proxy<Vec<u8>> = Proxy::from_bytes(&wire).unwrap();
    assert_eq!(*consumer, vec![3u8; 100]);
    p.factory().evict_target().unwrap();
    assert!(!producer.exists(p.key()).unwrap());
    p.factory()
        .evict_target()
        .expect("evicting a gone object is no error");
    let late: Proxy<Vec<u8>> = Proxy::from_bytes(&wire).unwrap();
    assert!(matches!(late.resolve(), Err(Error::MissingKey { .. })));
    std::fs::remove_dir_all(dir).ok();
}
