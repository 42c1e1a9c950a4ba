//! A connector that keeps its server process alive.

use std::time::Duration;

use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Key, Payload, Result,
};

use super::{Client, Fabric, ServerProcess};
use crate::TransportConfig;

/// A connector of fabric `F` that owns the server it talks to (stopped when
/// it is dropped). It is that fabric's connector in every respect: `kind`
/// and `config` are the inner connector's, so a rebuilt connector is a plain
/// one.
pub struct WithServer<F: Fabric> {
    /// The connector.
    pub conn: Client<F>,
    /// Its server (dropped after the connector).
    pub server: ServerProcess<F>,
}

impl<F: Fabric> std::fmt::Debug for WithServer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithServer")
            .field("conn", &self.conn)
            .field("server", &self.server)
            .finish()
    }
}

// A wrapper: forward every method, so no default replaces the connector's own.
#[warn(clippy::missing_trait_methods)]
impl<F: Fabric> Connector for WithServer<F> {
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

/// The conformance suite's `setup` over `fabric`: a fresh server process per
/// case (stopped with it) and a connector to it, reading the server's
/// segments in place or copying (`zero_copy`; `None`: the default).
pub fn conformance_setup<F: Fabric>(fabric: &str, zero_copy: Option<bool>) -> WithServer<F> {
    let server =
        ServerProcess::<F>::start(fabric, &["--segment-size", "64M", "--memory-limit", "1G"]);
    let mut cfg = F::config(&server.addr, fabric).with_timeout(Duration::from_secs(30));
    if let Some(zc) = zero_copy {
        cfg = cfg.with_zero_copy(zc);
    }
    WithServer {
        conn: Client::<F>::new(cfg).expect("connector"),
        server,
    }
}
