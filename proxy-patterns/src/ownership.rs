//! Ownership: an [`OwnedProxy`] evicts its object when dropped; borrows are
//! checked by the compiler inside a process and follow ProxyStore's
//! `OwnedProxy` / `RefProxy` / `RefMutProxy` rules across processes.
//!
//! | rule | in a process | across processes |
//! |---|---|---|
//! | one owner; dropping it evicts | `Drop` | serializing an owner **moves** ownership: the sender's copy no longer evicts and refuses use ([`Error::Ownership`]); the receiver owns |
//! | many shared borrows or one mutable | `borrow(&self)` / `borrow_mut(&mut self)`: compile-time | a borrow is sent as [`RefProxy::remote`] / [`RefMutProxy::remote`]; the borrow stays alive in the owner's process until the task reports back, then is dropped (released) |
//! | the owner outlives its borrows | lifetimes `'a` | as above: the remote handle cannot outlive the local borrow that made it unless the task keeps it |
//! | update a mutably borrowed object | [`RefMutProxy::set`] | [`RemoteMut::set`] ([`Deferrable::set`](proxy_core::Deferrable::set)); the owner re-reads it after the borrow is released |
//!
//! A second mutable borrow does not compile:
//!
//! ```compile_fail
//! # use proxy_core::{LocalConnector, Store};
//! # use proxy_patterns::ownership::StoreOwnershipExt;
//! let store = Store::new("own-doc", LocalConnector::new()).unwrap();
//! let mut owned = store.owned_proxy(vec![1u8]).unwrap();
//! let a = owned.borrow_mut().unwrap();
//! let b = owned.borrow_mut().unwrap(); // error[E0499]: second mutable borrow
//! drop((a, b));
//! ```
//!
//! nor does dropping (or moving) the owner while it is borrowed:
//!
//! ```compile_fail
//! # use proxy_core::{LocalConnector, Store};
//! # use proxy_patterns::ownership::StoreOwnershipExt;
//! let store = Store::new("own-doc2", LocalConnector::new()).unwrap();
//! let owned = store.owned_proxy(vec![1u8]).unwrap();
//! let r = owned.borrow().unwrap();
//! drop(owned); // error[E0505]: cannot move out of `owned` because it is borrowed
//! let _ = r.len();
//! ```
//!
//! The working pattern:
//!
//! ```
//! use proxy_core::{LocalConnector, Store};
//! use proxy_patterns::ownership::StoreOwnershipExt;
//! let store = Store::new("own-doc3", LocalConnector::new())?;
//! let mut owned = store.owned_proxy(vec![1u32, 2, 3])?;
//! let key = owned.key().clone();
//! {
//!     let a = owned.borrow()?;
//!     let b = owned.borrow()?; // many shared borrows
//!     assert_eq!(a.len() + b.len(), 6);
//! }
//! owned.borrow_mut()?.set(vec![4, 5])?; // written back to the store
//! assert_eq!(store.get::<Vec<u32>>(&key)?, Some(vec![4, 5]));
//! drop(owned); // evicted
//! assert!(!store.exists(&key)?);
//! # Ok::<(), proxy_core::Error>(())
//! ```

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use once_cell::sync::OnceCell;
use proxy_core::codec;
use proxy_core::{Error, Key, Object, Proxy, Result, Store, StoreFactory};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn ownership(key: &Key, reason: impl Into<String>) -> Error {
    Error::Ownership {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The single owner of a stored object: dropping it evicts the object.
///
/// Serializing it (serde, or [`OwnedProxy::into_bytes`]) moves ownership to
/// whoever deserializes it: this copy is then *moved*: it no longer evicts,
/// and using it is [`Error::Ownership`].
pub struct OwnedProxy<T> {
    factory: StoreFactory,
    target: OnceCell<T>,
    moved: AtomicBool,
}

impl<T: Object> OwnedProxy<T> {
    /// Take ownership of the object behind `proxy` (its evict-on-resolve
    /// flag is dropped: the owner evicts instead). A resolved target is kept.
    pub fn from_proxy(proxy: Proxy<T>) -> Result<Self> {
        let store = proxy.factory().store()?.clone();
        let key = proxy.key().clone();
        let factory = store.proxy_from_key::<T>(key, false).factory().clone();
        let target = OnceCell::new();
        if proxy.is_resolved()
            && let Ok(t) = proxy.into_inner()
        {
            let _ = target.set(t);
        }
        Ok(OwnedProxy {
            factory,
            target,
            moved: AtomicBool::new(false),
        })
    }

    fn live(&self) -> Result<()> {
        if self.moved.load(Ordering::Acquire) {
            Err(ownership(
                self.key(),
                "this owner was serialized (ownership moved to the receiver); it can no longer be used",
            ))
        } else {
            Ok(())
        }
    }

    /// The key of the owned object.
    pub fn key(&self) -> &Key {
        self.factory.key()
    }

    /// The store the object lives in.
    pub fn store(&self) -> Result<&Store> {
        self.factory.store()
    }

    /// Resolve (once) and return the object.
    pub fn resolve(&self) -> Result<&T> {
        self.live()?;
        self.target.get_or_try_init(|| self.factory.resolve())
    }

    /// Whether ownership moved away (this copy was serialized).
    pub fn is_moved(&self) -> bool {
        self.moved.load(Ordering::Acquire)
    }

    /// A shared borrow (many may coexist, none with a mutable one).
    pub fn borrow(&self) -> Result<RefProxy<'_, T>> {
        self.live()?;
        Ok(RefProxy { owner: self })
    }

    /// The mutable borrow (exclusive, checked by the compiler).
    pub fn borrow_mut(&mut self) -> Result<RefMutProxy<'_, T>> {
        self.live()?;
        Ok(RefMutProxy {
            owner: self,
            lent: std::cell::Cell::new(false),
        })
    }

    /// A new owner of a copy of the object under a new key.
    pub fn clone_owned(&self) -> Result<OwnedProxy<T>> {
        self.live()?;
        let store = self.store()?;
        let bytes = store
            .get_encoded(self.key())?
            .ok_or_else(|| ownership(self.key(), "the owned object is missing from its store"))?;
        let key = store.put_encoded(bytes.into())?;
        OwnedProxy::from_proxy(store.proxy_from_key(key, false))
    }

    /// Serialize (postcard) and give up ownership: the receiver of the bytes
    /// owns the object (see [`OwnedProxy::from_bytes`]).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        self.live()?;
        let out = postcard::to_allocvec(&self.factory).map_err(|e| Error::Encode {
            reason: format!("serializing an owned proxy: {e}"),
        })?;
        self.moved.store(true, Ordering::Release);
        Ok(out)
    }

    /// Become the owner of an object sent with [`OwnedProxy::into_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let factory: StoreFactory = postcard::from_bytes(bytes)
            .map_err(|e| Error::decode(format!("not a serialized owned proxy: {e}")))?;
        Ok(OwnedProxy {
            factory,
            target: OnceCell::new(),
            moved: AtomicBool::new(false),
        })
    }

    /// Give up ownership without evicting; returns a plain proxy.
    pub fn into_proxy(self) -> Proxy<T> {
        self.moved.store(true, Ordering::Release);
        Proxy::from_factory(self.factory.clone())
    }
}

impl<T: Object> Deref for OwnedProxy<T> {
    type Target = T;

    /// Resolves on first use; **panics** if resolving fails or ownership moved
    /// (call [`OwnedProxy::resolve`] where that can happen).
    fn deref(&self) -> &T {
        match self.resolve() {
            Ok(t) => t,
            Err(e) => panic!("owned proxy failed to resolve: {e}"),
        }
    }
}

impl<T> Drop for OwnedProxy<T> {
    fn drop(&mut self) {
        if !self.moved.load(Ordering::Acquire)
            && let Ok(store) = self.factory.store()
            && !store.is_closed()
        {
            let _ = store.evict(self.factory.key());
        }
    }
}

impl<T> fmt::Debug for OwnedProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OwnedProxy({}{})",
            self.factory.key(),
            if self.moved.load(Ordering::Relaxed) {
                ", moved"
            } else {
                ""
            }
        )
    }
}

impl<T> Serialize for OwnedProxy<T> {
    /// Writes the factory and marks this copy as moved (ownership travels
    /// with the bytes). Serializing a moved owner is an error.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.moved.swap(true, Ordering::AcqRel) {
            return Err(serde::ser::Error::custom(format!(
                "owned proxy {} was already moved",
                self.factory.key()
            )));
        }
        self.factory.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for OwnedProxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(OwnedProxy {
            factory: StoreFactory::deserialize(d)?,
            target: OnceCell::new(),
            moved: AtomicBool::new(false),
        })
    }
}

/// A shared borrow of an [`OwnedProxy`].
pub struct RefProxy<'a, T> {
    owner: &'a OwnedProxy<T>,
}

impl<T: Object> RefProxy<'_, T> {
    /// The object (resolved on first use).
    pub fn resolve(&self) -> Result<&T> {
        self.owner.resolve()
    }

    /// A handle for a task in another process: it reads the object and does
    /// not evict it. Keep this borrow alive until that task reports back.
    pub fn remote(&self) -> RemoteRef<T> {
        RemoteRef {
            proxy: Proxy::from_factory(self.owner.factory.clone()),
        }
    }
}

impl<T: Object> Deref for RefProxy<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.owner
    }
}

impl<T> fmt::Debug for RefProxy<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefProxy({})", self.owner.factory.key())
    }
}

/// The mutable borrow of an [`OwnedProxy`].
pub struct RefMutProxy<'a, T> {
    owner: &'a mut OwnedProxy<T>,
    /// A remote handle was made: the object may have changed elsewhere.
    lent: std::cell::Cell<bool>,
}

impl<T: Object> RefMutProxy<'_, T> {
    /// The object (resolved on first use).
    pub fn resolve(&self) -> Result<&T> {
        self.owner.resolve()
    }

    /// Replace the object, in the store ([`Deferrable::set`](proxy_core::Deferrable::set)
    /// on the key `put` minted, which the `Connector` contract allows and the
    /// conformance case `set_replaces` checks) and in the owner.
    pub fn set(&mut self, value: T) -> Result<()> {
        let store = self.owner.store()?.clone();
        set_in_store(&store, self.owner.key(), &value)?;
        self.owner.target = OnceCell::with_value(value);
        Ok(())
    }

    /// A handle for a task in another process that may replace the object
    /// ([`RemoteMut::set`]). Keep this borrow alive until that task reports
    /// back; dropping the borrow then makes the owner read the new value.
    pub fn remote(&self) -> RemoteMut<T> {
        self.lent.set(true);
        RemoteMut {
            proxy: Proxy::from_factory(self.owner.factory.clone()),
        }
    }
}

impl<T> Drop for RefMutProxy<'_, T> {
    /// A remote task may have replaced the object: forget the owner's copy
    /// and this process's cached bytes, so the next use reads the store.
    fn drop(&mut self) {
        if self.lent.get() {
            if let Ok(store) = self.owner.factory.store() {
                store.uncache(self.owner.factory.key());
            }
            self.owner.target = OnceCell::new();
        }
    }
}

impl<T: Object> Deref for RefMutProxy<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.owner
    }
}

impl<T> fmt::Debug for RefMutProxy<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefMutProxy({})", self.owner.factory.key())
    }
}

fn set_in_store<T: Object>(store: &Store, key: &Key, value: &T) -> Result<()> {
    let d = store
        .connector()
        .as_deferrable()
        .ok_or_else(|| Error::Unsupported {
            connector: store.connector().kind().to_string(),
            operation: "updating a borrowed object (Deferrable::set)",
        })?;
    d.set(key, codec::encode(value)?)?;
    store.uncache(key);
    Ok(())
}

/// A shared borrow sent to another process: reads, never evicts.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemoteRef<T> {
    proxy: Proxy<T>,
}

impl<T: Object> RemoteRef<T> {
    /// The object.
    pub fn resolve(&self) -> Result<&T> {
        self.proxy.resolve()
    }
}

impl<T: Object> fmt::Debug for RemoteRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteRef({})", self.proxy.factory().key())
    }
}

/// A mutable borrow sent to another process: reads, and replaces the object
/// with [`RemoteMut::set`]; never evicts.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemoteMut<T> {
    proxy: Proxy<T>,
}

impl<T: Object> RemoteMut<T> {
    /// The object (as it was when first read here).
    pub fn resolve(&self) -> Result<&T> {
        self.proxy.resolve()
    }

    /// Replace the object in the store ([`Deferrable::set`](proxy_core::Deferrable::set)
    /// on the owner's key, as [`RefMutProxy::set`] does).
    pub fn set(&self, value: &T) -> Result<()> {
        let store = self.proxy.factory().store()?;
        set_in_store(store, self.proxy.key(), value)
    }
}

impl<T: Object> fmt::Debug for RemoteMut<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteMut({})", self.proxy.factory().key())
    }
}

/// Owned proxies from a store.
pub trait StoreOwnershipExt {
    /// Store `obj` and return its owner (populated with `obj`).
    fn owned_proxy<T: Object>(&self, obj: T) -> Result<OwnedProxy<T>>;
}

impl StoreOwnershipExt for Store {
    fn owned_proxy<T: Object>(&self, obj: T) -> Result<OwnedProxy<T>> {
        let key = self.put(&obj)?;
        let factory = self.proxy_from_key::<T>(key, false).factory().clone();
        Ok(OwnedProxy {
            factory,
            target: OnceCell::with_value(obj),
            moved: AtomicBool::new(false),
        })
    }
}
