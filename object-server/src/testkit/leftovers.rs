//! What a server-backed connector's namespace still holds after a
//! conformance case ([`server_leftovers`], the suite's `leftovers` hook), and
//! the check that this hook catches a `put_batch` that stores the objects
//! before an oversized one ([`partial_batch_is_caught`]).

use std::sync::Arc;

use proxy_core::conformance::{Ctx, case, run_case};
use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload,
    Result,
};

use super::{Client, Fabric, WithServer, conformance_setup};

/// The conformance suite's `leftovers` hook for a connector of fabric `F`
/// whose server outlives the case (a [`WithServer`]): asks the server of
/// `config` (a fresh client) how many objects and bytes of slots it still
/// holds. Each case has a server of its own and evicts what it stored, so
/// anything there was stored through the connector without a key handed
/// back (a partial batch) or not freed by an evict. An unreachable server is
/// reported too (the hook cannot tell).
pub fn server_leftovers<F: Fabric>(config: &ConnectorConfig) -> Vec<String> {
    let stats = Client::<F>::from_config(config).and_then(|c| {
        let s = c.server_stats();
        let _ = c.close();
        s
    });
    match stats {
        Ok(s) if s.objects == 0 && s.used == 0 => Vec::new(),
        Ok(s) => vec![format!(
            "the object server still holds objects: {} ({} bytes of slots in use)",
            s.objects, s.used
        )],
        Err(e) => vec![format!(
            "cannot ask the object server what it still holds: {e}"
        )],
    }
}

/// A connector of fabric `F` that declares a `max_object_size` of `limit`
/// and refuses larger objects with `TooLarge`; its `put_batch` puts the
/// objects one by one and, unless `undo`, leaves those before a refused one
/// stored (the planted bug: nothing in the batch's answer names them).
struct Limited<F: Fabric> {
    inner: WithServer<F>,
    limit: u64,
    undo: bool,
}

impl<F: Fabric> std::fmt::Debug for Limited<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("undo", &self.undo)
            .finish()
    }
}

impl<F: Fabric> Limited<F> {
    fn check(&self, data: &Payload) -> Result<()> {
        let size = data.len() as u64;
        if size > self.limit {
            return Err(Error::TooLarge {
                connector: self.inner.kind().into(),
                size,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

// The text form of keys and `wait_for` are the trait's defaults: `too_large`
// uses neither, and the end-of-case checks only round-trip keys.
impl<F: Fabric> Connector for Limited<F> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        c.max_object_size = Some(self.limit);
        c
    }
    fn put(&self, data: Payload) -> Result<Key> {
        self.check(&data)?;
        self.inner.put(data)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        let mut keys = Vec::with_capacity(data.len());
        for d in data {
            if let Err(e) = self.check(&d) {
                if self.undo {
                    keys.iter().for_each(|k| {
                        let _ = self.inner.evict(k);
                    });
                }
                return Err(e);
            }
            keys.push(self.inner.put(d)?);
        }
        Ok(keys)
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_batch(keys)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<()> {
        self.inner.evict(key)
    }
    fn close(&self) -> Result<()> {
        self.inner.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.inner.config()
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        None // its `set` would bypass the limit
    }
}

/// [`server_leftovers`] catches a partial batch: the suite's `too_large`
/// case over fabric `fabric` (zero copy off), on a connector that leaves the
/// objects before an oversized one on the server, fails with the hook and
/// passes without it (nothing else sees those objects: no key names them);
/// the same connector undoing its partial batch passes with the hook.
/// `register` registers the fabric's connector kind (the end-of-case checks
/// may rebuild it from its configuration).
pub fn partial_batch_is_caught<F: Fabric>(fabric: &str, register: fn()) {
    register();
    let too_large = case("too_large").expect("the suite has a too_large case");
    let ctx = |undo: bool| {
        let conn = Limited {
            inner: conformance_setup::<F>(fabric, Some(false)),
            limit: 1 << 20,
            undo,
        };
        Ctx::new(Arc::new(conn), "conformance_child_entry")
    };
    let caught = run_case(too_large, ctx(false).with_leftovers(server_leftovers::<F>))
        .expect_err("too_large with the server's leftovers hook passed a partial put_batch");
    assert!(
        caught.contains("still holds objects: 1 "),
        "the failure names the object left on the server: {caught}"
    );
    eprintln!("caught: {caught}");
    run_case(too_large, ctx(false)).unwrap_or_else(|e| {
        panic!("without the hook nothing sees the partial batch, yet the case failed: {e}")
    });
    run_case(too_large, ctx(true).with_leftovers(server_leftovers::<F>))
        .unwrap_or_else(|e| panic!("a batch undone whole is not a leftover: {e}"));
}
