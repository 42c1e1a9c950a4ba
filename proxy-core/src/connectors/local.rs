//! [`LocalConnector`]: objects in this process's memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::connector::{Capabilities, Connector, ConnectorConfig, Deferrable, FromConfig, Payload};
use crate::error::{Error, Result};
use crate::key::Key;

const KIND: &str = "local";
const SHARDS: usize = 16;

#[derive(Serialize, Deserialize)]
struct LocalKey {
    id: [u8; 16],
}

#[derive(Serialize, Deserialize)]
struct LocalOptions {
    /// Process that owns the objects.
    pid: u32,
    /// Which `LocalConnector` in that process.
    instance: u64,
}

struct Inner {
    instance: u64,
    shards: Vec<RwLock<HashMap<[u8; 16], Bytes>>>,
    /// Bumped (and waiters woken) by every `set`: wakes `wait_for`.
    arrivals: Mutex<u64>,
    arrived: parking_lot::Condvar,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);
static INSTANCES: Lazy<Mutex<HashMap<u64, Weak<Inner>>>> = Lazy::new(Default::default);

/// Objects kept in this process's memory (for tests, single-process
/// pipelines, and as the reference implementation of the contract).
///
/// Its configuration names this process and this instance, so a proxy
/// deserialized elsewhere in the same process resolves, while one sent to
/// another process fails with a clear error (`cross_process` is false).
#[derive(Clone)]
pub struct LocalConnector {
    inner: Arc<Inner>,
}

impl fmt::Debug for LocalConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalConnector(#{})", self.inner.instance)
    }
}

impl Default for LocalConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalConnector {
    /// A new, empty in-process store.
    pub fn new() -> Self {
        let inner = Arc::new(Inner {
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            arrivals: Mutex::new(0),
            arrived: parking_lot::Condvar::new(),
        });
        let mut live = INSTANCES.lock();
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(inner.instance, Arc::downgrade(&inner));
        LocalConnector { inner }
    }

    fn shard(&self, id: &[u8; 16]) -> &RwLock<HashMap<[u8; 16], Bytes>> {
        &self.inner.shards[id[0] as usize % SHARDS]
    }

    fn id(key: &Key) -> Result<[u8; 16]> {
        Ok(key.decode::<LocalKey>(KIND)?.id)
    }
}

impl Connector for LocalConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            zero_copy_get: true,
            mapped_get: true,
            notify: true,
            ..Capabilities::MINIMAL
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let id = super::new_id();
        self.shard(&id).write().insert(id, data.to_bytes());
        Ok(Key::encode(&LocalKey { id }))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        data.into_iter().map(|d| self.put(d)).collect()
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let id = Self::id(key)?;
        Ok(self.shard(&id).read().get(&id).cloned())
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let id = Self::id(key)?;
        Ok(self.shard(&id).read().contains_key(&id))
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let id = Self::id(key)?;
        self.shard(&id).write().remove(&id);
        Ok(())
    }

    /// Does nothing: the objects live as long as any clone of this connector,
    /// and every operation works after `close` as before.
    fn close(&self) -> Result<()> {
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(
            KIND,
            LocalOptions {
                pid: std::process::id(),
                instance: self.inner.instance,
            },
        )
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }

    /// Woken by `put`/`set` of any key (a condition variable), then re-checks.
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        let id = Self::id(key)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = self.inner.arrivals.lock();
        loop {
            if self.shard(&id).read().contains_key(&id) {
                return Ok(true);
            }
            if self
                .inner
                .arrived
                .wait_until(&mut seen, deadline)
                .timed_out()
            {
                return Ok(self.shard(&id).read().contains_key(&id));
            }
        }
    }
}

impl LocalConnector {
    fn announce(&self) {
        *self.inner.arrivals.lock() += 1;
        self.inner.arrived.notify_all();
    }
}

impl Deferrable for LocalConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(Key::encode(&LocalKey {
            id: super::new_id(),
        }))
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let id = Self::id(key)?;
        self.shard(&id).write().insert(id, data.to_bytes());
        self.announce();
        Ok(())
    }
}

impl FromConfig for LocalConnector {
    const KIND: &'static str = KIND;

    /// Finds the live instance the configuration names; fails in any other
    /// process or once that instance is gone.
    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        let o: LocalOptions = config.options()?;
        if o.pid != std::process::id() {
            return Err(Error::config(
                KIND,
                format!(
                    "this local store lives in process {} and cannot be reached from process {}: \
                     local connectors are in-process only (use file, redis or ucx to share objects)",
                    o.pid,
                    std::process::id()
                ),
            ));
        }
        let inner = INSTANCES.lock().get(&o.instance).and_then(Weak::upgrade);
        inner.map(|inner| LocalConnector { inner }).ok_or_else(|| {
            Error::config(
                KIND,
                format!("local store instance #{} no longer exists", o.instance),
            )
        })
    }
}
