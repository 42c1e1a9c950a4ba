//! The process's one store registry: named stores, and the stores whose
//! proxies left through serialization, so that proxies resolve against one
//! store (one cache, one set of connections) per process.
//!
//! A proxy finds its store by name **and** connector configuration: stores
//! of the same name over different connectors live side by side. Four MPI
//! ranks that each open a store named `"local"` on their own directory hand
//! out proxies that all resolve in one process, each against a store over its
//! own directory (built from the proxy's configuration, then reused).
//! [`get`] answers by name alone: the store [`register`]ed under it, or else
//! the first one this process rebuilt from a proxy with that name.
//!
//! This module builds on [`Store`]; a `Store` never calls into it. A closed
//! store is simply never returned (and dropped from the registry at its next
//! change), so closing needs no call back here.

use std::collections::HashMap;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::store::{Store, WeakStore};

#[derive(Default)]
struct Registry {
    /// Registered stores by name (kept alive by the registry).
    named: HashMap<String, Store>,
    /// Stores rebuilt from proxies' configurations with `register` whose
    /// name was taken (kept alive), found by name and connector configuration.
    rebuilt: Vec<Store>,
    /// Stores that minted proxies which left through serialization (not kept
    /// alive by the registry); see [`note_shared`].
    shared: Vec<WeakStore>,
}

impl Registry {
    /// Forget closed and dropped stores.
    fn prune(&mut self) {
        self.named.retain(|_, s| !s.is_closed());
        self.rebuilt.retain(|s| !s.is_closed());
        self.shared
            .retain(|w| w.upgrade().is_some_and(|s| !s.is_closed()));
    }

    fn named(&self, name: &str) -> Option<Store> {
        self.named.get(name).filter(|s| !s.is_closed()).cloned()
    }

    /// An open store with this name and connector configuration: the
    /// registered one, a rebuilt one, or one whose proxies were shared.
    fn find(&self, config: &StoreConfig) -> Option<Store> {
        let same = |s: &Store| {
            !s.is_closed()
                && s.config().name == config.name
                && s.config().connector == config.connector
        };
        self.named
            .get(&config.name)
            .filter(|s| same(s))
            .or_else(|| self.rebuilt.iter().find(|s| same(s)))
            .cloned()
            .or_else(|| {
                self.shared
                    .iter()
                    .filter_map(WeakStore::upgrade)
                    .find(|s| same(s))
            })
    }
}

static REGISTRY: Lazy<Mutex<Registry>> = Lazy::new(Default::default);
// Serialises store creation in `get_or_create`, so two threads resolving
// proxies of the same unknown store build it once (ProxyStore issue #319).
static CREATE: Mutex<()> = Mutex::new(());

/// Register a store under its name, so proxies of it resolve against it. With
/// `exist_ok`, replacing an open store of the same name is allowed; otherwise
/// it is [`Error::StoreExists`]. A closed store is never returned: closing
/// unregisters it.
pub fn register(store: &Store, exist_ok: bool) -> Result<()> {
    let mut r = REGISTRY.lock();
    r.prune();
    let name = store.name().to_string();
    if !exist_ok && r.named.contains_key(&name) {
        return Err(Error::StoreExists(name));
    }
    r.named.insert(name, store.clone());
    Ok(())
}

/// Remove the stores of this name from the registry (the registered one and
/// those rebuilt from proxies; they stay usable by those holding them).
/// Returns the registered one, else the first rebuilt one.
pub fn unregister(name: &str) -> Option<Store> {
    let mut r = REGISTRY.lock();
    r.prune();
    let mut rebuilt = Vec::new();
    r.rebuilt.retain(|s| {
        let hit = s.name() == name;
        if hit {
            rebuilt.push(s.clone());
        }
        !hit
    });
    r.named.remove(name).or_else(|| rebuilt.into_iter().next())
}

/// Close every store the registry keeps alive (registered and rebuilt from
/// proxies) and forget them: what a program's shutdown (the C ABI's
/// `ps_finalize`) does so no connection outlives it. Stores only noted as
/// sharing proxies belong to their owners and are left alone. The first
/// error is returned after every store was closed.
pub fn close_all() -> Result<()> {
    let stores: Vec<Store> = {
        let mut r = REGISTRY.lock();
        let mut all: Vec<Store> = r.named.drain().map(|(_, s)| s).collect();
        all.append(&mut r.rebuilt);
        all
    };
    let mut first = Ok(());
    for s in stores {
        let out = s.close();
        if first.is_ok() {
            first = out;
        }
    }
    first
}

/// The registered (open) store of that name.
pub fn get(name: &str) -> Option<Store> {
    REGISTRY.lock().named(name)
}

/// Remember `store` (weakly) as one whose proxies left through
/// serialization, so a proxy deserialized in this process resolves against
/// it rather than a second store built from its configuration. Cheap after
/// the first call for a store.
pub(crate) fn note_shared(store: &Store) {
    if store.first_share() {
        let mut r = REGISTRY.lock();
        r.prune();
        r.shared.push(store.downgrade());
    }
}

/// The store a proxy with this configuration should use: an open store of
/// this process with the same name *and* connector configuration (registered,
/// rebuilt from an earlier proxy, or one that minted proxies), else a new one
/// built from it and, if `config.register`, kept for later proxies (and
/// returned by [`get`] if no other store holds the name). Stores of one name
/// over different connectors never mix: each proxy gets its own.
pub fn get_or_create(config: &StoreConfig) -> Result<Store> {
    if let Some(s) = REGISTRY.lock().find(config) {
        return Ok(s);
    }
    let _guard = CREATE.lock();
    if let Some(s) = REGISTRY.lock().find(config) {
        return Ok(s);
    }
    let store = Store::from_config(config)?;
    if config.register {
        let mut r = REGISTRY.lock();
        r.prune();
        if !r.named.contains_key(&config.name) {
            r.named.insert(config.name.clone(), store.clone());
        } else {
            r.rebuilt.push(store.clone());
        }
    }
    Ok(store)
}
