//! The process's one store registry: named stores, and the stores whose
//! proxies left through serialization, so that proxies resolve against one
//! store (one cache, one set of connections) per process.
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
    /// Stores that minted proxies which left through serialization (not kept
    /// alive by the registry); see [`note_shared`].
    shared: Vec<WeakStore>,
}

impl Registry {
    /// Forget closed and dropped stores.
    fn prune(&mut self) {
        self.named.retain(|_, s| !s.is_closed());
        self.shared
            .retain(|w| w.upgrade().is_some_and(|s| !s.is_closed()));
    }

    fn named(&self, name: &str) -> Option<Store> {
        self.named.get(name).filter(|s| !s.is_closed()).cloned()
    }

    /// An open store with this name and connector configuration.
    fn shared(&self, config: &StoreConfig) -> Option<Store> {
        self.shared.iter().filter_map(WeakStore::upgrade).find(|s| {
            !s.is_closed()
                && s.config().name == config.name
                && s.config().connector == config.connector
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

/// Remove a store from the registry (it stays usable by those holding it).
pub fn unregister(name: &str) -> Option<Store> {
    let mut r = REGISTRY.lock();
    r.prune();
    r.named.remove(name)
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

/// The store a proxy with this configuration should use: the registered store
/// of that name, else an open store of this process with the same name and
/// connector configuration that minted proxies, else a new one built from it
/// (and registered if `config.register`). A registered store of that name
/// whose connector configuration differs is an error rather than a silent
/// mix-up.
pub fn get_or_create(config: &StoreConfig) -> Result<Store> {
    if let Some(s) = find(config)? {
        return Ok(s);
    }
    let _guard = CREATE.lock();
    if let Some(s) = find(config)? {
        return Ok(s);
    }
    let store = Store::from_config(config)?;
    if config.register {
        register(&store, true)?;
    }
    Ok(store)
}

fn find(config: &StoreConfig) -> Result<Option<Store>> {
    let r = REGISTRY.lock();
    match r.named(&config.name) {
        Some(s) if s.config().connector == config.connector => Ok(Some(s)),
        Some(s) => Err(Error::InvalidConfig {
            connector: Some(config.connector.kind.clone()),
            reason: format!(
                "a different store named '{}' is registered in this process (its connector: {:?}; the proxy's: {:?})",
                config.name,
                s.config().connector,
                config.connector
            ),
        }),
        None => Ok(r.shared(config)),
    }
}
