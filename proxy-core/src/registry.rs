//! Process-wide registries: connector kinds (to rebuild connectors from their
//! configuration) and named stores (so proxies reuse one store per process).

use std::collections::HashMap;
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};

use crate::config::StoreConfig;
use crate::connector::{ConnectorConfig, DynConnector, FromConfig};
use crate::error::{Error, Result};
use crate::store::Store;

type Builder = fn(&ConnectorConfig) -> Result<DynConnector>;

fn build<C: FromConfig>(cfg: &ConnectorConfig) -> Result<DynConnector> {
    cfg.expect_kind(C::KIND)?;
    Ok(Arc::new(C::from_config(cfg)?))
}

static KINDS: Lazy<RwLock<HashMap<&'static str, Builder>>> = Lazy::new(|| {
    let mut m: HashMap<&'static str, Builder> = HashMap::new();
    m.insert(crate::LocalConnector::KIND, build::<crate::LocalConnector>);
    m.insert(crate::FileConnector::KIND, build::<crate::FileConnector>);
    m.insert(crate::MultiConnector::KIND, build::<crate::MultiConnector>);
    RwLock::new(m)
});

/// Make connector type `C` rebuildable from configurations of kind `C::KIND`
/// in this process. Idempotent. The built-in connectors (local, file, multi)
/// are always registered; each connector crate offers a `register()` that
/// calls this.
pub fn register_connector<C: FromConfig>() {
    KINDS.write().insert(C::KIND, build::<C>);
}

/// The connector kinds this process can rebuild, sorted.
pub fn registered_kinds() -> Vec<&'static str> {
    let mut v: Vec<_> = KINDS.read().keys().copied().collect();
    v.sort_unstable();
    v
}

/// Build a connector from its configuration.
pub fn connector_from_config(cfg: &ConnectorConfig) -> Result<DynConnector> {
    let builder = KINDS.read().get(cfg.kind.as_str()).copied();
    match builder {
        Some(b) => b(cfg),
        None => Err(Error::UnknownConnector {
            kind: cfg.kind.clone(),
            known: registered_kinds().join(", "),
        }),
    }
}

static STORES: Lazy<RwLock<HashMap<String, Store>>> = Lazy::new(Default::default);
// Serialises store creation in `get_or_create_store`, so two threads resolving
// proxies of the same unknown store build it once (ProxyStore issue #319).
static CREATE: Mutex<()> = Mutex::new(());

/// Register a store under its name. With `exist_ok`, replacing a store of the
/// same name is allowed; otherwise it is [`Error::StoreExists`].
pub fn register_store(store: &Store, exist_ok: bool) -> Result<()> {
    let mut map = STORES.write();
    let name = store.name().to_string();
    if !exist_ok && map.contains_key(&name) {
        return Err(Error::StoreExists(name));
    }
    map.insert(name, store.clone());
    Ok(())
}

/// Remove a store from the registry (it stays usable by those holding it).
pub fn unregister_store(name: &str) -> Option<Store> {
    STORES.write().remove(name)
}

/// The registered store of that name.
pub fn get_store(name: &str) -> Option<Store> {
    STORES.read().get(name).cloned()
}

/// The store a proxy with this configuration should use: the registered store
/// of that name, else a live store in this process with the same name and
/// connector configuration, else a new one built from it (and registered if
/// `config.register`). A registered store of that name whose
/// connector configuration differs is an error rather than a silent mix-up.
pub fn get_or_create_store(config: &StoreConfig) -> Result<Store> {
    if let Some(s) = find_matching(config)? {
        return Ok(s);
    }
    if let Some(s) = Store::find_live(config) {
        return Ok(s);
    }
    let _guard = CREATE.lock();
    if let Some(s) = find_matching(config)? {
        return Ok(s);
    }
    let store = Store::from_config(config)?;
    if config.register {
        register_store(&store, true)?;
    }
    Ok(store)
}

fn find_matching(config: &StoreConfig) -> Result<Option<Store>> {
    match get_store(&config.name) {
        None => Ok(None),
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
    }
}
