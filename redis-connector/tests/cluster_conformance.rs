//! The proxy-core conformance suite, unchanged, against a Redis Cluster of
//! 3 masters and 3 replicas started by the test (one cluster for the whole
//! test binary; each case gets a fresh key prefix, deleted by `close`:
//! checked by `leftovers` on every master). The chunk size is 128 KiB so
//! that the suite's larger objects (`large_object`, `concurrent_instances`)
//! go through the chunked path.

mod common;

use std::sync::{Mutex, OnceLock};

use common::cluster::RedisCluster;
use proxy_core::ConnectorConfig;
use redis_connector::RedisClusterConnector;

static CLUSTER: Mutex<Option<RedisCluster>> = Mutex::new(None);

/// Kill (and reap) the cluster when the test binary exits: statics are never
/// dropped. (Should this not run, each server's watchdog still kills it.)
extern "C" fn stop_cluster() {
    if let Ok(mut c) = CLUSTER.lock() {
        c.take();
    }
}

fn seeds() -> Vec<String> {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS
        .get_or_init(|| {
            let cluster = RedisCluster::start();
            let seeds = cluster.seeds();
            *CLUSTER.lock().unwrap() = Some(cluster);
            // SAFETY: registers a plain `extern "C" fn()` with no captured state.
            unsafe {
                libc::atexit(stop_cluster);
            }
            seeds
        })
        .clone()
}

fn setup() -> RedisClusterConnector {
    RedisClusterConnector::builder(seeds())
        .prefix(format!("test-{}:", uuid::Uuid::new_v4()))
        .chunk_size(128 << 10)
        .clear(true)
        .build()
        .unwrap()
}

/// The cluster's keys under the configuration's prefix, on every master.
fn keys_left(cfg: &ConnectorConfig) -> Vec<String> {
    let prefix = cfg.options["prefix"].as_str().expect("a prefix");
    assert!(!prefix.contains(['*', '?', '[', ']', '\\']), "{prefix}");
    let guard = CLUSTER.lock().unwrap();
    guard
        .as_ref()
        .expect("the test cluster")
        .keys(&format!("{prefix}*"))
}

proxy_core::conformance_suite!(
    setup = setup,
    register = redis_connector::register,
    leftovers = keys_left
);
