//! The one error type of proxystore-rs.

use std::fmt;

/// Boxed source error carried by some variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure proxystore-rs reports.
///
/// Variants are semantic: match on them to decide what to do, and use
/// [`Error::is_temporary`] to decide whether retrying the same operation may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A proxy (or a strict get) asked for a key whose object is not in the store
    /// (never stored, evicted, or lost with a server restart).
    #[error(
        "object {key} is missing from store '{store}' (connector '{connector}'): evicted, never stored, or lost"
    )]
    MissingKey {
        /// Printable key.
        key: String,
        /// Store name.
        store: String,
        /// Connector kind.
        connector: String,
    },

    /// A key could not be decoded or does not belong to this connector.
    #[error("invalid key for connector '{connector}': {reason}")]
    InvalidKey {
        /// Connector kind that rejected the key.
        connector: String,
        /// What is wrong.
        reason: String,
    },

    /// An encoded object could not be decoded (corrupt, truncated, wrong type, unknown format).
    #[error("cannot decode object{}: {reason}", key.as_ref().map(|k| format!(" {k}")).unwrap_or_default())]
    Decode {
        /// The key the bytes came from, when known.
        key: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// An object could not be encoded.
    #[error("cannot encode object: {reason}")]
    Encode {
        /// What is wrong.
        reason: String,
    },

    /// A store or connector configuration names a connector kind this process does not know.
    #[error(
        "unknown connector kind '{kind}' (registered here: {known}); link its crate and call its `register()` before resolving"
    )]
    UnknownConnector {
        /// The kind asked for.
        kind: String,
        /// Comma-separated list of the kinds registered in this process.
        known: String,
    },

    /// A store URL's scheme is not registered in this process.
    #[error(
        "unsupported store URL scheme '{scheme}' (registered here: {known}); link the connector's crate and call its `register()`"
    )]
    UnknownScheme {
        /// The scheme of the URL (lower case).
        scheme: String,
        /// Comma-separated list of the schemes registered in this process.
        known: String,
    },

    /// A configuration (store or connector) is malformed or inconsistent.
    #[error("invalid configuration{}: {reason}", connector.as_ref().map(|c| format!(" for connector '{c}'")).unwrap_or_default())]
    InvalidConfig {
        /// Connector kind, when the problem is in a connector's options.
        connector: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// The connector does not support this operation (see its
    /// [`Capabilities`](crate::Capabilities)).
    #[error("connector '{connector}' does not support {operation}")]
    Unsupported {
        /// Connector kind.
        connector: String,
        /// The operation that was refused.
        operation: &'static str,
    },

    /// The object is larger than the connector (or its configured limit) accepts;
    /// nothing was written.
    #[error("object of {size} bytes exceeds the limit of {limit} bytes of connector '{connector}'")]
    TooLarge {
        /// Connector kind.
        connector: String,
        /// Size of the object.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A store with this name is already registered.
    #[error("a store named '{0}' is already registered")]
    StoreExists(String),

    /// The store was closed.
    #[error("store '{0}' is closed")]
    StoreClosed(String),

    /// A locked proxy was asked to resolve.
    #[error("proxy is locked: call unlock() before resolving it")]
    Locked,

    /// An object lifetime was used after it was closed (or it expired).
    #[error("lifetime '{name}' is closed: its objects were evicted; make a new lifetime")]
    LifetimeClosed {
        /// The lifetime's name.
        name: String,
    },

    /// A proxy future's result was set a second time.
    #[error("the future {key} already has a result: a future is set once")]
    AlreadySet {
        /// Printable key of the future.
        key: String,
    },

    /// An ownership rule was broken at run time (a second mutable borrow, a
    /// borrow of a mutably borrowed object, an owner dropped or updated while
    /// borrowed, a borrow released twice).
    #[error("ownership of {key}: {reason}")]
    Ownership {
        /// Printable key of the owned object.
        key: String,
        /// What rule was broken.
        reason: String,
    },

    /// A deadline passed before the operation completed.
    #[error("{operation} timed out after {after:?} (connector '{connector}')")]
    Timeout {
        /// Connector kind.
        connector: String,
        /// The operation.
        operation: &'static str,
        /// The configured timeout.
        after: std::time::Duration,
    },

    /// A failure inside a connector or its transport.
    #[error("connector '{connector}' failed during {operation}: {source}")]
    Connector {
        /// Connector kind.
        connector: String,
        /// The operation.
        operation: &'static str,
        /// Whether retrying may help (connection refused, server restarting, ...).
        temporary: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// An I/O error with the context it happened in.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (e.g. `writing /dev/shm/store/<key>`).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed (the failure is
    /// transient: a timeout, a refused or reset connection, a server restarting).
    /// Everything else (bad input, missing keys, unknown kinds) is permanent.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Connector { temporary, .. } => *temporary,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }

    /// An [`Error::Io`] with a context line.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    /// An [`Error::Decode`] without a key.
    pub fn decode(reason: impl fmt::Display) -> Self {
        Error::Decode {
            key: None,
            reason: reason.to_string(),
        }
    }

    /// An [`Error::InvalidConfig`] for a connector kind.
    pub fn config(connector: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::InvalidConfig {
            connector: Some(connector.into()),
            reason: reason.to_string(),
        }
    }

    /// An [`Error::Connector`] that retrying later may cure (a peer that is
    /// down or restarting, a link cut, a resource busy for now).
    pub fn temporary(
        connector: impl Into<String>,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::connector(connector, operation, true, source)
    }

    /// An [`Error::Connector`] that retrying will not cure (a refused
    /// request, a protocol violation, a resource that is gone for good).
    pub fn permanent(
        connector: impl Into<String>,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::connector(connector, operation, false, source)
    }

    /// An [`Error::Connector`] whose kind is decided at run time (e.g. from
    /// a native library's error code); with a known kind, prefer
    /// [`Error::temporary`] or [`Error::permanent`].
    pub fn connector(
        connector: impl Into<String>,
        operation: &'static str,
        temporary: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Connector {
            connector: connector.into(),
            operation,
            temporary,
            source: source.into(),
        }
    }

    /// Attach a key to a decode error (no-op for other variants).
    pub fn with_key(self, key: &impl fmt::Display) -> Self {
        match self {
            Error::Decode { key: None, reason } => Error::Decode {
                key: Some(key.to_string()),
                reason,
            },
            other => other,
        }
    }
}
