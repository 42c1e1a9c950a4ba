//! [`DaosOptions`]: what a DAOS store's configuration carries (and a store
//! URL sets), with their defaults and checks.

use std::time::Duration;

use proxy_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::KIND;
use crate::layout::MIN_CHUNK;

/// Default array chunk size: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;
/// Default deadline of one operation (a whole batch): 30 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default number of operations in flight on the event queue in a batch.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;

/// What a configuration carries (and a store URL sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaosOptions {
    /// Pool label (or UUID).
    pub pool: String,
    /// Container label (or UUID) in the pool.
    pub container: String,
    /// Namespace inside the container: objects of other namespaces read as
    /// missing, keys of other namespaces are invalid.
    #[serde(default)]
    pub namespace: String,
    /// DAOS system name (default: the agent's, `daos_server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Object class name (`S1`, `SX`, `RP_2GX`, ...); default: chosen by DAOS
    /// from the container's properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oclass: Option<String>,
    /// Array chunk size in bytes (the unit DAOS distributes over targets).
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    /// Deadline of one operation or batch, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Operations in flight at once in a batch.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// How objects are laid out in the container (see the crate docs).
    #[serde(default, skip_serializing_if = "DaosLayout::is_array")]
    pub layout: DaosLayout,
}

/// How a DAOS store lays out its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DaosLayout {
    /// One byte-array object per stored object, read straight into the
    /// receive pool (the fast path).
    #[default]
    Array,
    /// Values of the PyDAOS dictionary named by the namespace, as the Python
    /// ProxyStore's `DAOSConnector` keeps them: each side reads the other's
    /// objects. Needs a container of type `PYTHON` (or one with no type).
    Pydaos,
}

impl DaosLayout {
    fn is_array(&self) -> bool {
        *self == DaosLayout::Array
    }
}

fn default_chunk() -> u64 {
    DEFAULT_CHUNK_SIZE
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

impl DaosOptions {
    /// Options for `pool` and `container`, everything else default.
    pub fn new(pool: impl Into<String>, container: impl Into<String>) -> Self {
        DaosOptions {
            pool: pool.into(),
            container: container.into(),
            namespace: String::new(),
            system: None,
            oclass: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            layout: DaosLayout::Array,
        }
    }

    /// Builder: the layout.
    pub fn layout(mut self, layout: DaosLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Builder: the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Builder: the object class.
    pub fn oclass(mut self, oclass: impl Into<String>) -> Self {
        self.oclass = Some(oclass.into());
        self
    }

    /// Builder: the deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout_ms = t.as_millis().max(1) as u64;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(KIND, m));
        if self.pool.is_empty() || self.container.is_empty() {
            return bad("a DAOS store needs a pool and a container label".into());
        }
        for (what, s) in [
            ("pool", &self.pool),
            ("container", &self.container),
            ("namespace", &self.namespace),
        ] {
            if s.contains('\0') {
                return bad(format!("the {what} label {s:?} contains a NUL byte"));
            }
        }
        if self.chunk_size < MIN_CHUNK || self.chunk_size > (1 << 30) {
            return bad(format!(
                "chunk_size {} is outside 4 KiB ..= 1 GiB",
                self.chunk_size
            ));
        }
        if self.timeout_ms == 0 || self.max_in_flight == 0 {
            return bad("timeout_ms and max_in_flight must be positive".into());
        }
        if self.layout == DaosLayout::Pydaos && self.namespace.is_empty() {
            return bad(
                "the pydaos layout keeps objects in the PyDAOS dictionary the namespace names: give a namespace".into(),
            );
        }
        Ok(())
    }
}
