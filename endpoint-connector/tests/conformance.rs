//! The proxy-core conformance suite against a ProxyStore endpoint (the
//! Python `proxystore-endpoint` of ProxyStore 1.1.0, started for each case
//! on a free loopback port with a temporary `PROXYSTORE_HOME`, and stopped
//! with its directory removed when the case ends), as every connector runs
//! it. The venv is made on first use, as for `python_endpoints.rs`.

mod common;

use std::time::Duration;

use common::Sites;
use endpoint_connector::EndpointConnector;
use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Key, Payload, Result,
};

/// An endpoint connector that owns its endpoint (dropped after it). `kind`
/// and `config` are the inner connector's: a rebuilt connector is a plain
/// one, which finds the endpoint through the same `PROXYSTORE_HOME`.
struct WithEndpoint {
    conn: EndpointConnector,
    _sites: Sites,
}

impl std::fmt::Debug for WithEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithEndpoint")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

// A wrapper: forward every method, so no default replaces the connector's own.
#[warn(clippy::missing_trait_methods)]
impl Connector for WithEndpoint {
    fn kind(&self) -> &'static str {
        self.conn.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.conn.capabilities()
    }
    fn put(&self, data: Payload) -> Result<Key> {
        self.conn.put(data)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        self.conn.put_batch(data)
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.conn.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.conn.get_batch(keys)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.conn.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<()> {
        self.conn.evict(key)
    }
    fn close(&self) -> Result<()> {
        self.conn.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.conn.config()
    }
    fn key_to_string(&self, key: &Key) -> Result<String> {
        self.conn.key_to_string(key)
    }
    fn parse_key(&self, s: &str) -> Result<Key> {
        self.conn.parse_key(s)
    }
    fn wait_for(&self, key: &Key, timeout: Duration) -> Result<bool> {
        self.conn.wait_for(key, timeout)
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        self.conn.as_deferrable()
    }
}

fn setup() -> WithEndpoint {
    let sites = Sites::start_n(1);
    WithEndpoint {
        conn: sites.connector(0, 60_000),
        _sites: sites,
    }
}

proxy_core::conformance_suite!(setup = setup, register = endpoint_connector::register);
