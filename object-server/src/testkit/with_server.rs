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
    /// Zero copy is off: every get that finds an object must start one-sided
    /// reads of the fabric ([`Fabric::fabric_reads`], where it counts them),
    /// checked on each get.
    pub fabric_only: bool,
}

impl<F: Fabric> WithServer<F> {
    /// Run `get` and, for a connector with zero copy off whose fabric counts
    /// its reads, check that the `found` objects it returned cost at least as
    /// many reads of the fabric (none was served by a mapping).
    fn checked<R>(
        &self,
        get: impl FnOnce() -> Result<R>,
        found: impl Fn(&R) -> usize,
    ) -> Result<R> {
        let before = F::fabric_reads(&self.conn).filter(|_| self.fabric_only);
        let r = get()?;
        if let (Some(before), Some(after)) = (before, F::fabric_reads(&self.conn)) {
            let n = found(&r) as u64;
            assert!(
                after - before >= n,
                "{n} object(s) read with {} one-sided read(s) of the fabric: served by a mapping?",
                after - before
            );
        }
        Ok(r)
    }
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
        self.checked(|| self.conn.get(key), |g| usize::from(g.is_some()))
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.checked(
            || self.conn.get_batch(keys),
            |v| v.iter().filter(|g| g.is_some()).count(),
        )
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
        fabric_only: zero_copy == Some(false),
    }
}
