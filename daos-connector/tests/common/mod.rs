//! What the DAOS tests share: the pool and container they run against.
//!
//! The tests need a running DAOS system (`daos_server` with an engine, and
//! `daos_agent`) with a pool and a container, named by
//! `PROXYSTORE_DAOS_POOL` and `PROXYSTORE_DAOS_CONT`; see the crate README
//! for running one on a single machine. Each test uses a fresh namespace in
//! that container.

#![allow(dead_code)]

use std::time::Duration;

use daos_connector::{DaosConnector, DaosOptions};

/// Environment variable naming the pool the tests use.
pub const POOL_ENV: &str = "PROXYSTORE_DAOS_POOL";
/// Environment variable naming the container the tests use.
pub const CONT_ENV: &str = "PROXYSTORE_DAOS_CONT";

/// `(pool, container)` from the environment; panics with instructions.
pub fn target() -> (String, String) {
    if let Err(e) = daos_connector::available() {
        panic!("these tests need DAOS: {e}");
    }
    let get = |v: &str| {
        std::env::var(v).unwrap_or_else(|_| {
            panic!(
                "set {POOL_ENV} and {CONT_ENV} to the labels of a DAOS pool and container \
                 (dmg pool create NAME --size=...; daos container create POOL NAME); see daos-connector/README.md"
            )
        })
    };
    (get(POOL_ENV), get(CONT_ENV))
}

/// A unique namespace name.
pub fn fresh_namespace(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}-{}-{t}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for a fresh namespace of the test pool and container.
pub fn options(tag: &str) -> DaosOptions {
    let (pool, cont) = target();
    DaosOptions::new(pool, cont)
        .namespace(fresh_namespace(tag))
        .timeout(Duration::from_secs(60))
}

/// A connector over a fresh namespace.
pub fn connector(tag: &str) -> DaosConnector {
    DaosConnector::new(options(tag)).expect("connect to the test DAOS pool and container")
}

/// Environment variable naming a container of type PYTHON for the pydaos
/// layout's tests (default: the `PROXYSTORE_DAOS_CONT` container).
pub const PY_CONT_ENV: &str = "PROXYSTORE_DAOS_PY_CONT";

/// Options of the pydaos layout for a fresh namespace (a new PyDAOS
/// dictionary) of the test pool and its PYTHON container.
pub fn pydaos_options(tag: &str) -> DaosOptions {
    let (pool, cont) = target();
    let cont = std::env::var(PY_CONT_ENV).unwrap_or(cont);
    DaosOptions::new(pool, cont)
        .namespace(fresh_namespace(tag))
        .layout(daos_connector::DaosLayout::Pydaos)
        .timeout(Duration::from_secs(60))
}
