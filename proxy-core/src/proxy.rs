//! [`Proxy`]: a lazy reference that resolves from its store on first use,
//! and [`Store::proxy`] and its siblings, which make proxies (defined here
//! so that the dependency runs one way: proxies on stores, never back).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use once_cell::sync::OnceCell;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::Object;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::Store;
use crate::stores;

/// What a proxy carries: the store's configuration, the key, and options.
///
/// Resolving finds the store in this process (the store that made the proxy,
/// else the [store registry](crate::stores), else a new store built from the
/// configuration and registered) and gets the object.
#[derive(Clone, Deserialize)]
pub struct StoreFactory {
    config: Arc<StoreConfig>,
    key: Key,
    evict: bool,
    /// Wait up to this long for the object to appear (proxy futures).
    wait: Option<std::time::Duration>,
    /// The producing store, when the proxy has not left its process.
    #[serde(skip)]
    store: OnceCell<Store>,
}

/// What a factory serializes to (and deserializes from, by the derive above:
/// the field names and order are the same).
#[derive(Serialize)]
struct FactoryWire<'a> {
    config: &'a StoreConfig,
    key: &'a Key,
    evict: bool,
    wait: Option<std::time::Duration>,
}

impl Serialize for StoreFactory {
    /// Writes the configuration, key, evict flag and wait timeout. A factory that still
    /// knows its producing store makes that store known to the registry
    /// first, so the proxy deserialized in this process finds it.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if let Some(store) = self.store.get() {
            stores::note_shared(store);
        }
        FactoryWire {
            config: &self.config,
            key: &self.key,
            evict: self.evict,
            wait: self.wait,
        }
        .serialize(s)
    }
}

impl fmt::Debug for StoreFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreFactory")
            .field("store", &self.config.name)
            .field("connector", &self.config.connector.kind)
            .field("key", &self.key)
            .field("evict", &self.evict)
            .field("wait", &self.wait)
            .finish()
    }
}

impl StoreFactory {
    pub(crate) fn new(store: &Store, key: Key, evict: bool) -> Self {
        StoreFactory {
            config: store.config_arc(),
            key,
            evict,
            wait: None,
            store: OnceCell::with_value(store.clone()),
        }
    }

    /// Make resolving wait up to `timeout` for an object that is not stored
    /// yet (a proxy future's result), woken by the connector's
    /// [`wait_for`](crate::Connector::wait_for); after the timeout,
    /// resolving fails with [`Error::Timeout`].
    pub fn waiting(mut self, timeout: std::time::Duration) -> Self {
        self.wait = Some(timeout);
        self
    }

    /// How long resolving waits for a missing object (see [`StoreFactory::waiting`]).
    pub fn wait_timeout(&self) -> Option<std::time::Duration> {
        self.wait
    }

    /// The key of the proxied object.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The configuration of the store the object lives in.
    pub fn store_config(&self) -> &StoreConfig {
        &self.config
    }

    /// Whether resolving evicts the object from the store.
    pub fn evicts(&self) -> bool {
        self.evict
    }

    /// The store this factory reads from (found or created on first call).
    pub fn store(&self) -> Result<&Store> {
        self.store
            .get_or_try_init(|| stores::get_or_create(&self.config))
    }

    /// Evict the proxied object from its store (no error if it is gone):
    /// what a producer does once every consumer of a broadcast proxy is done.
    /// Every process then sees it gone ([`Store::exists`] is false; a get
    /// misses unless that process's cache still holds it).
    pub fn evict_target(&self) -> Result<()> {
        self.store()?.evict(&self.key)
    }

    /// Fetch and decode the object (and evict it if asked).
    pub fn resolve<T: Object>(&self) -> Result<T> {
        let clock = std::time::Instant::now();
        let store = self.store()?;
        let obj = match (store.get::<T>(&self.key)?, self.wait) {
            (Some(obj), _) => obj,
            (None, None) => store.get_required::<T>(&self.key)?,
            (None, Some(timeout)) => {
                if !store.connector().wait_for(&self.key, timeout)? {
                    return Err(Error::Timeout {
                        connector: store.connector().kind().to_string(),
                        operation: "waiting for a proxy future's result",
                        after: timeout,
                    });
                }
                store.get_required::<T>(&self.key)?
            }
        };
        if self.evict {
            store.evict(&self.key)?;
        }
        if let Some(m) = store.metrics() {
            m.time(
                crate::metrics::Op::Resolve,
                crate::metrics::Phase::Total,
                clock.elapsed(),
            );
        }
        Ok(obj)
    }
}

/// Per-proxy options (see [`Store::proxy_with`]).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// Evict the object from the store when the proxy resolves (once).
    pub evict: bool,
    /// Keep the original object in the returned proxy (so the producer never
    /// resolves it); `None` = the store's default.
    pub populate_target: Option<bool>,
}

impl ProxyOptions {
    /// Evict after the (first) resolve.
    pub fn evict(mut self, evict: bool) -> Self {
        self.evict = evict;
        self
    }

    /// Keep (or not) the original object in the proxy.
    pub fn populate_target(mut self, yes: bool) -> Self {
        self.populate_target = Some(yes);
        self
    }
}

impl Store {
    /// Store `obj` and return a proxy to it. With the store's default
    /// `populate_target`, the proxy keeps `obj` and never resolves here.
    pub fn proxy<T: Object>(&self, obj: T) -> Result<Proxy<T>> {
        self.proxy_with(obj, ProxyOptions::default())
    }

    /// [`Store::proxy`] with options.
    pub fn proxy_with<T: Object>(&self, obj: T, opts: ProxyOptions) -> Result<Proxy<T>> {
        let key = self.put(&obj)?;
        Ok(self.make_proxy(key, obj, opts))
    }

    fn make_proxy<T: Object>(&self, key: Key, obj: T, opts: ProxyOptions) -> Proxy<T> {
        let factory = StoreFactory::new(self, key, opts.evict);
        if opts.populate_target.unwrap_or(self.populate_target()) {
            Proxy::resolved(factory, obj)
        } else {
            Proxy::from_factory(factory)
        }
    }

    /// Store many objects in one batch and return their proxies, in order.
    pub fn proxy_batch<T: Object>(
        &self,
        objs: Vec<T>,
        opts: ProxyOptions,
    ) -> Result<Vec<Proxy<T>>> {
        let keys = self.put_batch(&objs)?;
        Ok(keys
            .into_iter()
            .zip(objs)
            .map(|(k, o)| self.make_proxy(k, o, opts))
            .collect())
    }

    /// A proxy for an object already stored under `key` (nothing is read now).
    pub fn proxy_from_key<T: Object>(&self, key: Key, evict: bool) -> Proxy<T> {
        Proxy::from_factory(StoreFactory::new(self, key, evict))
    }

    /// Store `obj` and return a proxy that refuses to resolve until unlocked.
    pub fn locked_proxy<T: Object>(&self, obj: T, opts: ProxyOptions) -> Result<LockedProxy<T>> {
        Ok(LockedProxy::new(self.proxy_with(obj, opts)?))
    }
}

/// A lazy, thread-safe reference to an object in a [`Store`].
///
/// A proxy resolves at most once, on first use ([`Deref`], [`Proxy::resolve`]),
/// from any thread, with no async runtime; concurrent first uses wait for the
/// one resolve. Serializing a proxy (with any serde format; [`Proxy::to_bytes`]
/// uses postcard) writes only its [`StoreFactory`]; the receiver gets an
/// unresolved proxy, so the object itself travels only when and where it is used.
///
/// # Failure
/// `Deref` cannot return an error: if resolving fails, it **panics** with the
/// error's message. Where failure is possible (another process, evicted
/// objects, a network), call [`Proxy::resolve`] first, which returns a
/// `Result`; after it succeeds, `Deref` never fails.
///
/// ```
/// # use proxy_core::{Store, LocalConnector, Proxy};
/// fn total(v: &Vec<f64>) -> f64 { v.iter().sum() }
/// let store = Store::new("doc-proxy", LocalConnector::new())?;
/// let p: Proxy<Vec<f64>> = store.proxy(vec![1.0, 2.0])?;
/// let wire = p.to_bytes()?;                       // factory only
/// let q: Proxy<Vec<f64>> = Proxy::from_bytes(&wire)?;
/// assert!(!q.is_resolved());
/// assert_eq!(total(&q), 3.0);                      // resolves here
/// # Ok::<(), proxy_core::Error>(())
/// ```
pub struct Proxy<T> {
    factory: StoreFactory,
    target: OnceCell<T>,
}

impl<T: Object> Proxy<T> {
    /// An unresolved proxy.
    pub fn from_factory(factory: StoreFactory) -> Self {
        Proxy {
            factory,
            target: OnceCell::new(),
        }
    }

    /// A proxy that already holds its target (the producer's side).
    pub fn resolved(factory: StoreFactory, target: T) -> Self {
        Proxy {
            factory,
            target: OnceCell::with_value(target),
        }
    }

    /// Resolve now (if not yet) and return the target, or the error.
    pub fn resolve(&self) -> Result<&T> {
        self.target.get_or_try_init(|| self.factory.resolve())
    }

    /// Alias of [`Proxy::resolve`], named after `Deref`.
    pub fn try_deref(&self) -> Result<&T> {
        self.resolve()
    }

    /// Whether the target is here.
    pub fn is_resolved(&self) -> bool {
        self.target.get().is_some()
    }

    /// Resolve (if needed) and return the target by value (ProxyStore's `extract`).
    pub fn into_inner(self) -> Result<T> {
        match self.target.into_inner() {
            Some(t) => Ok(t),
            None => self.factory.resolve(),
        }
    }

    /// The factory.
    pub fn factory(&self) -> &StoreFactory {
        &self.factory
    }

    /// The key of the target.
    pub fn key(&self) -> &Key {
        &self.factory.key
    }

    /// Serialize (factory only) with postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Encode {
            reason: format!("serializing a proxy: {e}"),
        })
    }

    /// Deserialize a proxy written by [`Proxy::to_bytes`] (unresolved).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((p, [])) => Ok(p),
            Ok((_, rest)) => Err(Error::decode(format!(
                "serialized proxy has {} trailing bytes",
                rest.len()
            ))),
            Err(e) => Err(Error::decode(format!("not a serialized proxy: {e}"))),
        }
    }
}

impl<T: Object> Deref for Proxy<T> {
    type Target = T;

    /// Resolves on first use; **panics** if resolving fails (see the type docs).
    fn deref(&self) -> &T {
        match self.resolve() {
            Ok(t) => t,
            Err(e) => panic!("proxy for {} failed to resolve: {e}", self.factory.key),
        }
    }
}

impl<T: Object> AsRef<T> for Proxy<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: Clone> Clone for Proxy<T> {
    /// Clones the factory and, if resolved, the target.
    fn clone(&self) -> Self {
        Proxy {
            factory: self.factory.clone(),
            target: self.target.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Proxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target.get() {
            Some(t) => f.debug_tuple("Proxy").field(t).finish(),
            None => write!(
                f,
                "Proxy(<unresolved {} in store '{}'>)",
                self.factory.key, self.factory.config.name
            ),
        }
    }
}

impl<T> Serialize for Proxy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.factory.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Proxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Proxy {
            factory: StoreFactory::deserialize(d)?,
            target: OnceCell::new(),
        })
    }
}

/// A proxy that refuses to resolve until [`LockedProxy::unlock`]ed
/// (ProxyStore's `ProxyLocker`): pass it through code that must not touch
/// the data. It serializes like the proxy it wraps.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct LockedProxy<T> {
    proxy: Proxy<T>,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T: Object> LockedProxy<T> {
    /// Lock a proxy.
    pub fn new(proxy: Proxy<T>) -> Self {
        LockedProxy {
            proxy,
            _t: PhantomData,
        }
    }

    /// The proxy, usable again.
    pub fn unlock(self) -> Proxy<T> {
        self.proxy
    }

    /// Always [`Error::Locked`]: a locked proxy does not resolve.
    pub fn resolve(&self) -> Result<&T> {
        Err(Error::Locked)
    }

    /// The key (reading it does not resolve).
    pub fn key(&self) -> &Key {
        self.proxy.key()
    }
}

impl<T> fmt::Debug for LockedProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockedProxy({})", self.proxy.factory.key)
    }
}
