//! # daos-connector
//!
//! A [`Connector`](proxy_core::Connector) that keeps objects in
//! [DAOS](https://docs.daos.io): a store is a DAOS pool + container (by
//! label) + a namespace inside the container. libdaos is loaded at run time
//! (`daos-sys`), so this crate compiles everywhere; without DAOS every
//! constructor returns a clear error saying how to install it.
//!
//! ```no_run
//! use daos_connector::{DaosConnector, DaosOptions};
//! use proxy_core::{Proxy, Store};
//!
//! daos_connector::register(); // so proxies of kind "daos" resolve in this process
//! let c = DaosConnector::new(DaosOptions::new("mypool", "mycont"))?;
//! let store = Store::new("daos", c)?;
//! let p: Proxy<Vec<f64>> = store.proxy(vec![1.0, 2.0, 3.0])?;
//! # Ok::<(), proxy_core::Error>(())
//! ```
//!
//! ## Data layout
//!
//! **One DAOS byte-array object per stored object** (`DAOS_OT_ARRAY_BYTE`:
//! cell size 1, chunk size from the options, default 1 MiB, no metadata
//! object), of the configured object class (`oclass`, e.g. `S1`, `SX`,
//! `RP_2GX`; default: DAOS chooses from the container's properties). Every
//! chunk of the array starts with a stamp (chunk `k >= 1`: 16 bytes, the
//! object id's low 64 bits and `k`), and the object's bytes fill the rest
//! of the chunks. Chunk 0's stamp is the 32-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `PSRSDAOS` |
//! | 8..16 | namespace hash (FNV-1a 64 of the namespace name), little endian |
//! | 16..24 | object length, little endian |
//! | 24..32 | the object id's low 64 bits, little endian |
//!
//! Object ids come from `daos_cont_alloc_oids` (ranges unique in the
//! container across every process, 4096 reserved at a time), so keys never
//! collide. A key ([`DaosKey`]) carries the pool and container labels, the
//! namespace, the 128-bit object id and the length: another process rebuilds
//! the connector from its configuration and reads the object from the key
//! alone.
//!
//! Reads check the header: an evicted (punched) object or an id that was
//! never written reads as zeros and is `None`, as is an object of another
//! namespace or length. An object over several chunks is read chunk by
//! chunk (each at its own epoch), so every chunk's stamp is checked too: a
//! concurrent evict yields the whole object or `None`, never a mix, with no
//! extra round trip.
//!
//! With [`DaosLayout::Pydaos`] (`layout: pydaos`), objects are instead
//! values of the PyDAOS dictionary the namespace names, as the Python
//! ProxyStore's DAOS connector keeps them: each side reads the other's
//! objects (see the README, "The pydaos layout").
//!
//! ## Data path
//!
//! - `get` reads the stamps and the object in one `daos_array_read` whose
//!   scatter-gather list points the stamps at small zeroed buffers and the
//!   data, for objects of 64 KiB and more, at a buffer of the process's
//!   receive pool
//!   ([`proxy_core::mem::BufferPool`], shared by every DAOS connector in the
//!   process): the object is handed out as `Bytes` over that buffer (no
//!   copy), and the buffer goes back to the pool, still faulted in, when the
//!   last `Bytes` is dropped. Objects over 16 MiB are first probed with a
//!   32-byte header read, so a forged key's length never allocates memory.
//! - `get_batch`, `put_batch` keep up to `max_in_flight` (default 32)
//!   operations in flight on one DAOS event queue.
//! - `evict` checks the header (so a forged key never punches another
//!   key's object) and punches the object (`daos_array_destroy`).
//! - The pool and container handles are opened once per process and shared
//!   by every connector on them (dropped with the last one).
//! - Every network operation runs on an event queue with the connector's
//!   deadline (`timeout_ms`, default 30 s): past it the operations are
//!   aborted and the call fails with a temporary
//!   [`Error::Timeout`](proxy_core::Error::Timeout), never hangs.
//!
//! ## Errors
//!
//! `-DER_*` codes are reported with their name and description
//! (`d_errstr`/`d_errdesc`) in an [`Error::Connector`](proxy_core::Error)
//! whose source is a [`DaosFailure`]; transient codes (`DER_TIMEDOUT`,
//! `DER_UNREACH`, `DER_HG`, `DER_EXCLUDED`, `DER_NO_SERVICE`, ...) are
//! temporary, the rest permanent. An unknown pool or container label is an
//! `InvalidConfig` error naming the label and the command that creates it.

#![warn(missing_docs)]

mod buffer;
mod client;
mod config;
mod connector;
mod daos;
mod dict;
mod error;
mod evict;
mod key;
mod layout;
pub mod raw;
mod reader;
mod url;
mod writer;

pub use buffer::recv_pool_allocated_bytes;
pub use client::DaosConnector;
pub use config::{DaosLayout, DaosOptions};
pub use error::DaosFailure;
pub use key::{DaosKey, UNKNOWN_LEN};

/// The connector kind, as used in configurations.
pub const KIND: &str = "daos";

/// Register the `daos` connector kind in this process (so stores and
/// proxies whose configuration names it can be rebuilt) and the `daos://`
/// store URL scheme (`daos://POOL/CONTAINER[/NAMESPACE][?oclass=SX&chunk_size=BYTES&timeout_ms=MS&system=NAME&layout=array|pydaos]`).
/// Idempotent.
pub fn register() {
    proxy_core::registry::register_connector::<DaosConnector>();
    proxy_core::registry::register_scheme("daos", url::config_from_url);
}

/// Whether libdaos can be loaded in this process (and if not, why).
pub fn available() -> Result<(), String> {
    daos::available()
}
