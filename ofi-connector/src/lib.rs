#![doc = include_str!("../README.md")]
//!
//! ## The crate's API
//!
//! [`OfiConnector`] is an [`object_server::ObjectClient`] over [`Ofi`], the
//! libfabric transport of the shared object server; [`OfiConfig`] is its
//! configuration, [`register`] makes the `ofi` kind and URL scheme known,
//! [`ofi`] is the safe layer over `libfabric-sys` and [`raw`] the raw
//! `fi_read` loop the benchmarks compare with.
#![warn(missing_docs)]

mod config;
pub mod ofi;
pub mod raw;
mod transport;

pub use config::OfiConfig;
pub use object_server::{DataPath, TransportConfig};
pub use transport::{DESCRIPTOR_LEN, Ofi, OfiAlloc, OfiRegion, OfiRemote, OfiServer};

/// Connector kind.
pub const KIND: &str = "ofi";

/// The libfabric connector: an [`object_server::ObjectClient`] over [`Ofi`].
pub type OfiConnector = object_server::ObjectClient<Ofi>;
/// The key of an object (the object server's key: it names the object, not
/// the transport).
pub type OfiKey = object_server::ObjectKey;
/// Options of an in-process owner ([`OfiConnector::owner`]).
pub type OfiOwnerConfig = object_server::OwnerOptions<OfiConfig>;

/// Environment variable naming the server binary that spawn on demand starts.
pub const SERVER_ENV: &str = <OfiConfig as TransportConfig>::SERVER.env;

/// The `proxystore-ofi-server` binary that spawn on demand would start:
/// `$PROXYSTORE_OFI_SERVER`, else next to the current executable, else on
/// `PATH`. The error lists every place tried.
pub fn locate_server() -> Result<std::path::PathBuf, String> {
    object_server::locate_server(&<OfiConfig as TransportConfig>::SERVER)
}

/// Whether `provider` (as `fi_getinfo` names it, possibly with `" on
/// DOMAIN"`) refuses a remote write through a key registered with
/// `FI_REMOTE_READ` only.
///
/// Measured here with libfabric 1.17 (`tests/access.rs`): `tcp;ofi_rxm`
/// checks the key's access in software at the target (it fails the write
/// with `FI_ECANCELED` and drops the connection); the bytes never land.
/// `shm` does not: a write without `FI_DELIVERY_COMPLETE` (how this
/// connector's puts go, see `Ofi::put`) is a `process_vm_writev` by the
/// writer that never looks at the key, as its reads are (only a process
/// with ptrace rights over the server, its own user, can do either).
/// `verbs`, `cxi` and `efa` check MR access in the NIC (their documented
/// behaviour, not tested here). Other providers: `false` (not known).
pub fn enforces_read_only(provider: &str) -> bool {
    let name = provider.split(" on ").next().unwrap_or(provider);
    let core = name.split(';').next().unwrap_or(name);
    matches!(core, "tcp" | "verbs" | "cxi" | "efa")
}

/// Register the `"ofi"` kind with `proxy_core`'s connector registry, so that
/// proxies and configurations naming it can be resolved in this process, and
/// the `ofi://HOST:PORT` store URL scheme.
pub fn register() {
    proxy_core::registry::register_connector::<OfiConnector>();
    proxy_core::registry::register_scheme("ofi", object_server::config_from_url::<Ofi>);
}

#[cfg(test)]
mod url;
