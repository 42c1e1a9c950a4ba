#![doc = include_str!("../README.md")]
//!
//! ## The crate's API
//!
//! [`UcxConnector`] is an [`object_server::ObjectClient`] over [`Ucx`], the
//! UCX transport of the shared object server ([`UcxServer`] is its server
//! side); [`UcxConfig`] is its configuration, [`register`] makes the `ucx`
//! kind and URL scheme known, and [`ucx`] is the safe layer over `ucx-sys`.
#![warn(missing_docs)]

mod config;
mod transport;
pub mod ucx;

pub use config::{UcxConfig, tls_is_tcp_only};
pub use object_server::{DataPath, TransportConfig};
pub use transport::{Ucx, UcxAlloc, UcxServer};

/// Connector kind.
pub const KIND: &str = "ucx";

/// The UCX connector: an [`object_server::ObjectClient`] over [`Ucx`].
pub type UcxConnector = object_server::ObjectClient<Ucx>;
/// The key of a UCX object (the object server's key: it names the object,
/// not the transport).
pub type UcxKey = object_server::ObjectKey;
/// Options of an in-process owner ([`UcxConnector::owner`]).
pub type UcxOwnerConfig = object_server::OwnerOptions<UcxConfig>;

/// Environment variable naming the server binary that spawn on demand starts.
pub const SERVER_ENV: &str = <UcxConfig as TransportConfig>::SERVER.env;

/// The `proxystore-ucx-server` binary that spawn on demand would start:
/// `$PROXYSTORE_UCX_SERVER`, else next to the current executable, else on
/// `PATH`. The error lists every place tried.
pub fn locate_server() -> Result<std::path::PathBuf, String> {
    object_server::locate_server(&<UcxConfig as TransportConfig>::SERVER)
}

/// Register the `"ucx"` kind with `proxy_core`'s connector registry, so that
/// proxies and configurations naming it can be resolved in this process.
pub fn register() {
    proxy_core::registry::register_connector::<UcxConnector>();
    proxy_core::registry::register_scheme("ucx", object_server::config_from_url::<Ucx>);
}

#[cfg(test)]
mod url;
