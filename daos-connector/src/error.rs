//! DAOS failures and how they map to `proxy_core::Error`.

use std::ffi::c_int;
use std::fmt;

use proxy_core::Error;

use crate::KIND;

pub(crate) type Result<T, E = DaosError> = std::result::Result<T, E>;

/// A DAOS failure (the typed source of `proxy_core::Error::Connector`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaosFailure {
    /// libdaos could not be loaded: DAOS is not installed or not found.
    NotInstalled(String),
    /// A libdaos call failed with `-DER_*`.
    Der {
        /// The call.
        call: &'static str,
        /// The (negative) return code.
        rc: i32,
        /// `DER_NAME (description)`.
        text: String,
    },
}

impl fmt::Display for DaosFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaosFailure::NotInstalled(m) => write!(f, "{m}"),
            DaosFailure::Der { call, text, .. } => write!(f, "{call} failed: {text}"),
        }
    }
}

impl std::error::Error for DaosFailure {}

/// Internal error, converted to `proxy_core::Error` at the API boundary.
#[derive(Debug)]
pub(crate) enum DaosError {
    /// libdaos could not be loaded (why).
    NotInstalled(String),
    /// A libdaos call failed (made by `DaosError::call` in the thin layer,
    /// which knows which codes are transient).
    Der {
        call: &'static str,
        rc: c_int,
        text: String,
        temporary: bool,
    },
    Timeout,
    InitTimeout,
    InitThread(String),
    NoSuchPool(String),
    NoSuchContainer {
        pool: String,
        cont: String,
    },
    BadLabel(String),
    /// The container or namespace does not fit the configured layout.
    Layout(String),
    Closed,
    Core(Error),
}

impl DaosError {
    /// As `proxy_core::Error`, for operation `op`.
    pub(crate) fn into_error(self, op: &'static str, timeout: std::time::Duration) -> Error {
        match self {
            DaosError::NotInstalled(e) => Error::permanent(KIND, op, DaosFailure::NotInstalled(e)),
            DaosError::Der {
                call,
                rc,
                text,
                temporary,
            } => Error::connector(KIND, op, temporary, DaosFailure::Der { call, rc, text }),
            DaosError::Timeout => Error::Timeout {
                connector: KIND.to_string(),
                operation: op,
                after: timeout,
            },
            DaosError::InitTimeout => Error::temporary(
                KIND,
                op,
                "daos_init did not complete within the connector's timeout: are the DAOS engines and daos_agent up?",
            ),
            DaosError::InitThread(m) => {
                Error::temporary(KIND, op, format!("cannot start the daos_init thread: {m}"))
            }
            DaosError::NoSuchPool(p) => Error::config(
                KIND,
                format!(
                    "DAOS pool '{p}' does not exist (or this user may not connect to it); create it with `dmg pool create {p} ...`"
                ),
            ),
            DaosError::NoSuchContainer { pool, cont } => Error::config(
                KIND,
                format!(
                    "DAOS container '{cont}' does not exist in pool '{pool}'; create it with `daos container create {pool} {cont}`"
                ),
            ),
            DaosError::BadLabel(m) => Error::config(KIND, m),
            DaosError::Layout(m) => Error::config(KIND, m),
            DaosError::Closed => Error::permanent(
                KIND,
                op,
                "the DAOS connector is closed: build a new one from its configuration",
            ),
            DaosError::Core(e) => e,
        }
    }
}

impl From<Error> for DaosError {
    fn from(e: Error) -> Self {
        DaosError::Core(e)
    }
}
