//! Store metrics: units, phases and counters.

use std::time::Duration;

use proxy_core::metrics::Phase;
use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Key, LocalConnector, Payload, Result, Store,
};

/// The local connector with a 2 ms sleep inside every `put` and `get`.
#[derive(Debug)]
struct Slow(LocalConnector);

const DELAY: Duration = Duration::from_millis(2);

impl Connector for Slow {
    fn kind(&self) -> &'static str {
        "slow-local"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn put(&self, data: Payload) -> Result<Key> {
        std::thread::sleep(DELAY);
        self.0.put(data)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        std::thread::sleep(DELAY);
        self.0.put_batch(data)
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        std::thread::sleep(DELAY);
        self.0.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        std::thread::sleep(DELAY);
        self.0.get_batch(keys)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.0.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<()> {
        self.0.evict(key)
    }
    fn close(&self) -> Result<()> {
        self.0.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.0.config()
    }
}

#[test]
fn a_put_that_sleeps_2ms_in_the_connector_reports_about_2ms() {
    let store = Store::builder("metrics-units", Slow(LocalConnector::new()))
        .metrics(true)
        .cache_bytes(0)
        .build()
        .unwrap();
    let n = 10;
    let mut keys = Vec::new();
    for i in 0..n {
        keys.push(store.put(&vec![i as u8; 1000]).unwrap());
    }
    let snap = store.metrics().unwrap().snapshot();
    let put = snap.op("put").unwrap();
    assert_eq!(put.count, n);
    assert_eq!(put.objects, n);
    assert!(put.bytes >= n * 1000);
    let conn = put.phase(Phase::Connector).unwrap();
    // 2 ms asleep, plus scheduling on a loaded machine: between 2 and 20 ms,
    // in milliseconds and nanoseconds alike.
    assert!(conn.min_ns >= 2_000_000, "{conn:?}");
    assert!(conn.avg_ms >= 2.0 && conn.avg_ms < 20.0, "{conn:?}");
    assert!((conn.avg_ms - conn.avg_ns as f64 / 1e6).abs() < 1e-3);
    let ser = put.phase(Phase::Serialize).unwrap();
    assert!(ser.avg_ms < 1.0, "encoding 1 KB is not 1 ms: {ser:?}");
    let total = put.phase(Phase::Total).unwrap();
    assert!(total.sum_ns >= conn.sum_ns + ser.sum_ns);

    for k in &keys {
        store.get::<Vec<u8>>(k).unwrap().unwrap();
    }
    let _ = store.get_batch::<Vec<u8>>(&keys).unwrap();
    store.exists(&keys[0]).unwrap();
    store.evict(&keys[0]).unwrap();
    let snap = store.metrics().unwrap().snapshot();
    let get = snap.op("get").unwrap();
    assert_eq!(get.count, n + 1, "n gets and one batch");
    assert_eq!(get.objects, 2 * n);
    let gc = get.phase(Phase::Connector).unwrap();
    assert!(gc.min_ns >= 2_000_000 && gc.avg_ms < 20.0, "{gc:?}");
    assert!(get.phase(Phase::Serialize).is_some());
    assert_eq!(snap.op("exists").unwrap().count, 1);
    assert_eq!(snap.op("evict").unwrap().count, 1);
    let json: serde_json::Value = serde_json::from_str(&snap.to_json()).unwrap();
    assert_eq!(json["ops"][0]["op"], "put");
    assert!(snap.table().contains("connector"));
}

#[test]
fn cache_hits_and_misses_and_resolve_are_counted() {
    let store = Store::builder("metrics-cache", LocalConnector::new())
        .metrics(true)
        .build()
        .unwrap();
    let k = store.put(&"x".to_string()).unwrap();
    store.get::<String>(&k).unwrap(); // miss, then cached
    store.get::<String>(&k).unwrap(); // hit
    let p = store.proxy_from_key::<String>(k, false);
    assert_eq!(p.resolve().unwrap(), "x");
    let snap = store.metrics().unwrap().snapshot();
    let get = snap.op("get").unwrap();
    assert_eq!((get.cache_hits, get.cache_misses), (2, 1));
    assert!(get.phase(Phase::Cache).is_some());
    assert_eq!(snap.op("resolve").unwrap().count, 1);
    // Off by default: nothing is recorded.
    let plain = Store::new("metrics-off", LocalConnector::new()).unwrap();
    assert!(plain.metrics().is_none());
}
