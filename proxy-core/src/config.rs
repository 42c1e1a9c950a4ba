//! Store configuration: what a proxy carries so any process can find or
//! rebuild the store it came from.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::connector::ConnectorConfig;
use crate::error::{Error, Result};

/// Default in-process cache budget of a [`Store`](crate::Store): 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// A [`Store`](crate::Store)'s full, serializable configuration.
///
/// It round-trips through TOML (for people), JSON, and postcard (inside
/// proxies) for every connector, composite ones included.
///
/// ```toml
/// name = "shared"
/// cache_bytes = 67108864
///
/// [connector]
/// kind = "file"
/// options = { dir = "/dev/shm/proxystore" }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// The store's name (its identity in a process's registry).
    pub name: String,
    /// The connector's kind and options.
    pub connector: ConnectorConfig,
    /// In-process cache budget in bytes (0 disables the cache).
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
    /// Whether proxies made by this store keep the original object (so the
    /// producer never resolves its own proxy).
    #[serde(default = "yes")]
    pub populate_target: bool,
    /// Whether a store rebuilt from this configuration (in another process)
    /// registers itself, so later proxies reuse it.
    #[serde(default = "yes")]
    pub register: bool,
}

fn default_cache_bytes() -> u64 {
    DEFAULT_CACHE_BYTES
}
fn yes() -> bool {
    true
}

impl StoreConfig {
    /// A configuration with default options.
    pub fn new(name: impl Into<String>, connector: ConnectorConfig) -> Self {
        StoreConfig {
            name: name.into(),
            connector,
            cache_bytes: DEFAULT_CACHE_BYTES,
            populate_target: true,
            register: true,
        }
    }

    /// Parse TOML text.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        toml::from_str(s).map_err(|e| Error::InvalidConfig {
            connector: None,
            reason: format!("TOML store configuration: {e}"),
        })
    }

    /// Render as TOML text.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::InvalidConfig {
            connector: None,
            reason: format!("cannot render as TOML: {e}"),
        })
    }

    /// Read a TOML file.
    pub fn read_toml(path: impl AsRef<Path>) -> Result<Self> {
        let p = path.as_ref();
        let s = std::fs::read_to_string(p)
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
        Self::from_toml_str(&s)
    }

    /// Write a TOML file.
    pub fn write_toml(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path.as_ref();
        std::fs::write(p, self.to_toml_string()?)
            .map_err(|e| Error::io(format!("writing {}", p.display()), e))
    }
}
