//! Proxy futures: a result that does not exist yet, with a proxy to it that
//! can be handed to the next task now.
//!
//! [`ProxyFuture::new`] mints a key with [`Deferrable::new_key`](proxy_core::Deferrable::new_key);
//! [`ProxyFuture::set_result`] stores the result under it (once);
//! [`ProxyFuture::result`] and the proxy from [`ProxyFuture::proxy`] wait for
//! it through [`Connector::wait_for`](proxy_core::Connector::wait_for), which
//! the store wakes when the object arrives on connectors with
//! [`Capabilities::notify`](proxy_core::Capabilities::notify) (local: a
//! condition variable; file: inotify; Redis: a pub/sub message) and polls
//! (50 µs .. 5 ms backoff) on the others. ProxyStore's futures always poll,
//! at a 1 s default interval.
//!
//! A future serializes to its store configuration and key, so another
//! process (or MPI rank) can set it or wait for it.
//!
//! ```
//! use std::time::Duration;
//! use proxy_core::{LocalConnector, Store};
//! use proxy_patterns::future::StoreFutureExt;
//! let store = Store::new("fut-doc", LocalConnector::new())?;
//! let fut = store.future::<Vec<u64>>()?;
//! let p = fut.proxy(Duration::from_secs(10)); // hand this to the next task now
//! let setter = fut.clone();
//! std::thread::spawn(move || setter.set_result(&vec![1, 2, 3]).unwrap());
//! assert_eq!(p.resolve()?.iter().sum::<u64>(), 6); // waits, woken by the store
//! assert!(fut.done()?);
//! # Ok::<(), proxy_core::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use proxy_core::codec;
use proxy_core::{Error, Key, Object, Proxy, Result, Store, StoreFactory};
use serde::{Deserialize, Serialize};

/// A result to be set once, by any process, and waited for by others.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProxyFuture<T> {
    factory: StoreFactory,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ProxyFuture<T> {
    fn clone(&self) -> Self {
        ProxyFuture {
            factory: self.factory.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ProxyFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyFuture({})", self.factory.key())
    }
}

impl<T: Object> ProxyFuture<T> {
    /// A new future in `store`, whose connector must be
    /// [`Deferrable`](proxy_core::Deferrable) ([`Error::Unsupported`] otherwise).
    pub fn new(store: &Store) -> Result<Self> {
        let d = store
            .connector()
            .as_deferrable()
            .ok_or_else(|| Error::Unsupported {
                connector: store.connector().kind().to_string(),
                operation: "proxy futures (Deferrable::new_key)",
            })?;
        let key = d.new_key()?;
        Ok(ProxyFuture {
            factory: store.proxy_from_key::<T>(key, false).factory().clone(),
            _t: PhantomData,
        })
    }

    /// The key the result is stored under.
    pub fn key(&self) -> &Key {
        self.factory.key()
    }

    fn store(&self) -> Result<&Store> {
        self.factory.store()
    }

    /// Store the result; [`Error::AlreadySet`] if it was set before (checked
    /// against the store, so also across processes; two setters racing
    /// within microseconds are not told apart).
    pub fn set_result(&self, obj: &T) -> Result<()> {
        let store = self.store()?;
        if store.connector().exists(self.key())? {
            return Err(Error::AlreadySet {
                key: self.key().to_string(),
            });
        }
        let d = store
            .connector()
            .as_deferrable()
            .ok_or_else(|| Error::Unsupported {
                connector: store.connector().kind().to_string(),
                operation: "proxy futures (Deferrable::set)",
            })?;
        d.set(self.key(), codec::encode(obj)?)
    }

    /// Whether the result is set.
    pub fn done(&self) -> Result<bool> {
        self.store()?.exists(self.key())
    }

    /// Wait up to `timeout` for the result and return it; [`Error::Timeout`]
    /// if it is not set by then.
    pub fn result(&self, timeout: Duration) -> Result<T> {
        self.proxy(timeout).into_inner()
    }

    /// Wait up to `timeout` for the result (without reading it): whether it is set.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        self.store()?.connector().wait_for(self.key(), timeout)
    }

    /// A proxy to the result: resolving it waits up to `timeout` for the
    /// result (then fails with [`Error::Timeout`]). It serializes like any
    /// proxy, wait included.
    pub fn proxy(&self, timeout: Duration) -> Proxy<T> {
        Proxy::from_factory(self.factory.clone().waiting(timeout))
    }

    /// Serialize (postcard) to send to another process.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Encode {
            reason: format!("serializing a future: {e}"),
        })
    }

    /// Read a future written by [`ProxyFuture::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes)
            .map_err(|e| Error::decode(format!("not a serialized future: {e}")))
    }
}

/// `store.future::<T>()`.
pub trait StoreFutureExt {
    /// A new [`ProxyFuture`] in this store.
    fn future<T: Object>(&self) -> Result<ProxyFuture<T>>;
}

impl StoreFutureExt for Store {
    fn future<T: Object>(&self) -> Result<ProxyFuture<T>> {
        ProxyFuture::new(self)
    }
}
