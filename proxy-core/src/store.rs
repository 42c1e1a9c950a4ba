//! [`Store`]: typed put/get over any connector, with a byte-bounded cache
//! (its proxy-making methods live with [`Proxy`](crate::Proxy), in
//! [`proxy`](crate::proxy): a store knows nothing of proxies).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cache::ByteLru;
use crate::codec::{self, Object};
use crate::config::StoreConfig;
use crate::connector::{Connector, DynConnector, Payload};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::metrics::{Clock, Metrics, Op, Phase};
use crate::registry;

/// A named key/value store of typed objects over a [`Connector`]; cheap to
/// clone and shared across threads.
///
/// Only the cache takes a lock (briefly); connector I/O from many threads runs
/// concurrently (unlike ProxyStore's one `RLock` per store).
///
/// **The cache**: gets fill a per-process LRU of decoded bytes
/// ([`StoreBuilder::cache_bytes`], default 64 MiB); a later get of the same
/// key in this process is answered from it, also after another process
/// evicted the object (a key's object never changes, so the bytes are never
/// wrong, only kept). [`Store::exists`] always asks the connector. Turn the
/// cache off with `cache_bytes(0)`, `cache_bytes = 0` in TOML, or `?cache=0`
/// in a store URL ([`registry::store_config_from_url`]).
///
/// ```
/// use proxy_core::{LocalConnector, Store};
/// let store = Store::new("example", LocalConnector::new())?;
/// let key = store.put(&"hello".to_string())?;
/// assert_eq!(store.get::<String>(&key)?.as_deref(), Some("hello"));
/// let p = store.proxy(vec![1.0f64, 2.0, 3.0])?;
/// assert_eq!(p.iter().sum::<f64>(), 6.0);
/// # Ok::<(), proxy_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<StoreConfig>,
    connector: DynConnector,
    cache: Option<Mutex<ByteLru>>,
    closed: AtomicBool,
    /// Whether a proxy of this store was serialized (see [`Store::first_share`]).
    shared: AtomicBool,
    metrics: Option<Arc<Metrics>>,
}

/// A [`Store`] that is not kept alive (the registry's handle on stores that
/// minted proxies).
#[derive(Clone)]
pub(crate) struct WeakStore(Weak<Inner>);

impl WeakStore {
    pub(crate) fn upgrade(&self) -> Option<Store> {
        self.0.upgrade().map(|inner| Store { inner })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.inner.config.name)
            .field("connector", &self.inner.connector)
            .field("cache_bytes", &self.inner.config.cache_bytes)
            .finish()
    }
}

/// Builder for [`Store`] options.
#[derive(Debug)]
pub struct StoreBuilder {
    name: String,
    connector: DynConnector,
    cache_bytes: u64,
    populate_target: bool,
    metrics: bool,
}

impl StoreBuilder {
    /// In-process cache budget in bytes (0 disables it). Default 64 MiB.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Whether proxies keep the original object (default true).
    pub fn populate_target(mut self, yes: bool) -> Self {
        self.populate_target = yes;
        self
    }

    /// Record [metrics](crate::metrics) (default false; cheap enough to leave on).
    pub fn metrics(mut self, yes: bool) -> Self {
        self.metrics = yes;
        self
    }

    /// Build the store. To make proxies deserialized in this process find it
    /// by name, register it: [`stores::register`](crate::stores::register).
    pub fn build(self) -> Result<Store> {
        let connector_config = self.connector.config();
        let config = StoreConfig {
            name: self.name,
            connector: connector_config,
            cache_bytes: self.cache_bytes,
            populate_target: self.populate_target,
            register: true,
        };
        let metrics = self.metrics.then(|| Arc::new(Metrics::new()));
        Ok(Store::with_parts(config, self.connector, metrics))
    }
}

impl Store {
    /// A store with default options over `connector`.
    pub fn new(name: impl Into<String>, connector: impl Connector) -> Result<Store> {
        Store::builder(name, connector).build()
    }

    /// A builder over `connector` (an owned connector or an `Arc<dyn Connector>`).
    pub fn builder(name: impl Into<String>, connector: impl IntoDynConnector) -> StoreBuilder {
        StoreBuilder {
            name: name.into(),
            connector: connector.into_dyn(),
            cache_bytes: crate::config::DEFAULT_CACHE_BYTES,
            populate_target: true,
            metrics: false,
        }
    }

    /// Rebuild a store (and its connector) from a configuration. Does not
    /// register it; see [`stores::get_or_create`](crate::stores::get_or_create).
    ///
    /// The store's own configuration (what its proxies carry) takes the
    /// connector's configuration from the rebuilt connector, so secrets given
    /// in `config` (a Redis password) never travel in proxies.
    pub fn from_config(config: &StoreConfig) -> Result<Store> {
        let connector = registry::connector_from_config(&config.connector)?;
        let config = StoreConfig {
            connector: connector.config(),
            ..config.clone()
        };
        Ok(Store::with_parts(config, connector, None))
    }

    fn with_parts(
        config: StoreConfig,
        connector: DynConnector,
        metrics: Option<Arc<Metrics>>,
    ) -> Store {
        let cache = (config.cache_bytes > 0).then(|| Mutex::new(ByteLru::new(config.cache_bytes)));
        Store {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                connector,
                cache,
                closed: AtomicBool::new(false),
                shared: AtomicBool::new(false),
                metrics,
            }),
        }
    }

    pub(crate) fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }

    /// True the first time it is called for this store (and its clones).
    pub(crate) fn first_share(&self) -> bool {
        !self.inner.shared.load(Ordering::Relaxed)
            && !self.inner.shared.swap(true, Ordering::AcqRel)
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The store's configuration (what proxies carry).
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    pub(crate) fn config_arc(&self) -> Arc<StoreConfig> {
        self.inner.config.clone()
    }

    /// The connector.
    pub fn connector(&self) -> &DynConnector {
        &self.inner.connector
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::StoreClosed(self.name().to_string()))
        } else {
            Ok(())
        }
    }

    /// The key as the connector prints it (e.g. the Redis key name), for messages.
    fn key_text(&self, key: &Key) -> String {
        self.inner
            .connector
            .key_to_string(key)
            .unwrap_or_else(|_| key.to_string())
    }

    fn missing(&self, key: &Key) -> Error {
        Error::MissingKey {
            key: self.key_text(key),
            store: self.name().to_string(),
            connector: self.inner.connector.kind().to_string(),
        }
    }

    // ---- raw (encoded) operations -------------------------------------------

    /// This store's metrics, if it records them ([`StoreBuilder::metrics`]).
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.inner.metrics.as_ref()
    }

    fn m(&self) -> Option<&Metrics> {
        self.inner.metrics.as_deref()
    }

    /// Store an already encoded object.
    pub fn put_encoded(&self, data: Payload) -> Result<Key> {
        let clock = Clock::start(self.m());
        let key = self.connector_put(data)?;
        clock.since(self.m(), Op::Put, Phase::Total);
        Ok(key)
    }

    fn connector_put(&self, data: Payload) -> Result<Key> {
        self.check_open()?;
        let clock = Clock::start(self.m());
        let len = data.len() as u64;
        let key = self.inner.connector.put(data)?;
        clock.since(self.m(), Op::Put, Phase::Connector);
        if let Some(m) = self.m() {
            m.count(Op::Put, 1, len);
        }
        Ok(key)
    }

    /// The encoded bytes of an object (cache first).
    pub fn get_encoded(&self, key: &Key) -> Result<Option<Bytes>> {
        let clock = Clock::start(self.m());
        let got = self.fetch(key)?;
        clock.since(self.m(), Op::Get, Phase::Total);
        Ok(got)
    }

    fn fetch(&self, key: &Key) -> Result<Option<Bytes>> {
        self.check_open()?;
        let m = self.m();
        let mut cache_time = std::time::Duration::ZERO;
        if let Some(c) = &self.inner.cache {
            let t = m.map(|_| std::time::Instant::now());
            let hit = c.lock().get(key);
            if let (Some(m), Some(t)) = (m, t) {
                cache_time = t.elapsed();
                m.cache(Op::Get, u64::from(hit.is_some()), u64::from(hit.is_none()));
            }
            if let Some(b) = hit {
                if let Some(m) = m {
                    m.time(Op::Get, Phase::Cache, cache_time);
                    m.count(Op::Get, 1, b.len() as u64);
                }
                return Ok(Some(b));
            }
        }
        let clock = Clock::start(m);
        let got = self.inner.connector.get(key)?;
        clock.since(m, Op::Get, Phase::Connector);
        if let (Some(c), Some(b)) = (&self.inner.cache, &got) {
            let t = m.map(|_| std::time::Instant::now());
            c.lock().insert(key.clone(), b.clone());
            cache_time += t.map(|t| t.elapsed()).unwrap_or_default();
        }
        if let Some(m) = m {
            if self.inner.cache.is_some() {
                m.time(Op::Get, Phase::Cache, cache_time);
            }
            if let Some(b) = &got {
                m.count(Op::Get, 1, b.len() as u64);
            }
        }
        Ok(got)
    }

    /// Forget `key` in this process's cache (after the object was replaced
    /// elsewhere, e.g. by [`Deferrable::set`](crate::Deferrable::set) in
    /// another process). The stored object is not touched.
    pub fn uncache(&self, key: &Key) {
        if let Some(c) = &self.inner.cache {
            c.lock().remove(key);
        }
    }

    // ---- typed operations -----------------------------------------------------

    /// Encode and store an object; returns its key.
    pub fn put<T: Object>(&self, obj: &T) -> Result<Key> {
        let clock = Clock::start(self.m());
        let payload = codec::encode(obj)?;
        clock.since(self.m(), Op::Put, Phase::Serialize);
        let key = self.connector_put(payload)?;
        clock.since(self.m(), Op::Put, Phase::Total);
        Ok(key)
    }

    /// Encode and store many objects in one connector batch; keys in order.
    pub fn put_batch<T: Object>(&self, objs: &[T]) -> Result<Vec<Key>> {
        self.check_open()?;
        let m = self.m();
        let mut clock = Clock::start(m);
        let total = clock;
        let payloads = objs.iter().map(codec::encode).collect::<Result<Vec<_>>>()?;
        clock.lap(m, Op::Put, Phase::Serialize);
        let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let keys = self.inner.connector.put_batch(payloads)?;
        clock.lap(m, Op::Put, Phase::Connector);
        total.since(m, Op::Put, Phase::Total);
        if let Some(m) = m {
            m.count(Op::Put, keys.len() as u64, bytes);
        }
        Ok(keys)
    }

    /// The object under `key`, or `None` if it is not stored.
    pub fn get<T: Object>(&self, key: &Key) -> Result<Option<T>> {
        let total = Clock::start(self.m());
        let out = match self.fetch(key)? {
            None => Ok(None),
            Some(b) => {
                let clock = Clock::start(self.m());
                let obj = codec::decode(b)
                    .map(Some)
                    .map_err(|e| e.with_key(&self.key_text(key)));
                clock.since(self.m(), Op::Get, Phase::Serialize);
                obj
            }
        };
        total.since(self.m(), Op::Get, Phase::Total);
        out
    }

    /// Many gets: cache hits are answered locally, the rest in one connector
    /// batch (which the connector runs concurrently or pipelined). Order is kept.
    pub fn get_batch<T: Object>(&self, keys: &[Key]) -> Result<Vec<Option<T>>> {
        self.check_open()?;
        let m = self.m();
        let total = Clock::start(m);
        let mut clock = Clock::start(m);
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        let mut miss_idx = Vec::new();
        match &self.inner.cache {
            Some(c) => {
                let mut c = c.lock();
                for (i, k) in keys.iter().enumerate() {
                    match c.get(k) {
                        Some(b) => out[i] = Some(b),
                        None => miss_idx.push(i),
                    }
                }
            }
            None => miss_idx.extend(0..keys.len()),
        }
        if let Some(m) = m
            && self.inner.cache.is_some()
        {
            let misses = miss_idx.len() as u64;
            m.cache(Op::Get, keys.len() as u64 - misses, misses);
            clock.lap(Some(m), Op::Get, Phase::Cache);
        }
        if !miss_idx.is_empty() {
            let miss_keys: Vec<Key> = miss_idx.iter().map(|&i| keys[i].clone()).collect();
            let got = self.inner.connector.get_batch(&miss_keys)?;
            clock.lap(m, Op::Get, Phase::Connector);
            if got.len() != miss_keys.len() {
                return Err(Error::permanent(
                    self.inner.connector.kind(),
                    "get_batch",
                    format!(
                        "returned {} results for {} keys",
                        got.len(),
                        miss_keys.len()
                    ),
                ));
            }
            let mut cache = self.inner.cache.as_ref().map(|c| c.lock());
            for (&i, b) in miss_idx.iter().zip(got) {
                if let (Some(c), Some(b)) = (cache.as_mut(), &b) {
                    c.insert(keys[i].clone(), b.clone());
                }
                out[i] = b;
            }
        }
        if let Some(m) = m {
            let found = out.iter().flatten();
            m.count(
                Op::Get,
                found.clone().count() as u64,
                found.map(|b| b.len() as u64).sum(),
            );
        }
        let mut clock = Clock::start(m);
        let decoded = out
            .into_iter()
            .zip(keys)
            .map(|(b, k)| {
                b.map(|b| codec::decode(b).map_err(|e| e.with_key(&self.key_text(k))))
                    .transpose()
            })
            .collect();
        clock.lap(m, Op::Get, Phase::Serialize);
        total.since(m, Op::Get, Phase::Total);
        decoded
    }

    /// Whether `key` is stored, as the connector says: never answered by this
    /// process's cache, so an evict by another process is seen at once.
    pub fn exists(&self, key: &Key) -> Result<bool> {
        self.check_open()?;
        let clock = Clock::start(self.m());
        let out = self.inner.connector.exists(key);
        clock.since(self.m(), Op::Exists, Phase::Connector);
        clock.since(self.m(), Op::Exists, Phase::Total);
        out
    }

    /// Remove the object (from the connector and this process's cache).
    pub fn evict(&self, key: &Key) -> Result<()> {
        self.check_open()?;
        let clock = Clock::start(self.m());
        if let Some(c) = &self.inner.cache {
            c.lock().remove(key);
        }
        let connector = Clock::start(self.m());
        let out = self.inner.connector.evict(key);
        connector.since(self.m(), Op::Evict, Phase::Connector);
        clock.since(self.m(), Op::Evict, Phase::Total);
        out
    }

    /// Whether the object is in this process's cache.
    pub fn is_cached(&self, key: &Key) -> bool {
        self.inner
            .cache
            .as_ref()
            .is_some_and(|c| c.lock().contains(key))
    }

    /// Close the connector and drop the cache. Later operations fail with
    /// [`Error::StoreClosed`], and the [store registry](crate::stores) no
    /// longer returns the store. Idempotent.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(c) = &self.inner.cache {
            c.lock().clear();
        }
        self.inner.connector.close()
    }

    /// Whether [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The store's default for [`ProxyOptions::populate_target`](crate::ProxyOptions::populate_target).
    pub(crate) fn populate_target(&self) -> bool {
        self.inner.config.populate_target
    }

    pub(crate) fn get_required<T: Object>(&self, key: &Key) -> Result<T> {
        self.get(key)?.ok_or_else(|| self.missing(key))
    }
}

/// Conversion into a shared connector (owned connectors and `Arc`s of them).
pub trait IntoDynConnector {
    /// Convert.
    fn into_dyn(self) -> DynConnector;
}

impl<C: Connector> IntoDynConnector for C {
    fn into_dyn(self) -> DynConnector {
        Arc::new(self)
    }
}

impl IntoDynConnector for DynConnector {
    fn into_dyn(self) -> DynConnector {
        self
    }
}
