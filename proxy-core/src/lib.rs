//! # proxy-core
//!
//! Transparent object proxies for HPC and task-based applications, after the
//! Python [ProxyStore](https://github.com/proxystore/proxystore):
//! `store.proxy(obj)` puts `obj` in a store through a [`Connector`] and returns
//! a tiny [`Proxy`] that can be sent anywhere (another MPI rank, a task worker
//! on another node). The proxy carries only its factory (store configuration +
//! key, ~100 bytes); the first time the receiver uses it, it fetches and
//! decodes the object, then behaves as the object (`Deref`).
//!
//! ```
//! use proxy_core::{FileConnector, Proxy, Store};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct MyData { values: Vec<f64> }
//!
//! fn my_function(d: &MyData) -> f64 { d.values.iter().sum() }
//!
//! let dir = std::env::temp_dir().join(format!("ps-doc-{}", std::process::id()));
//! let store = Store::new("my-store", FileConnector::new(&dir)?)?;
//! let p: Proxy<MyData> = store.proxy(MyData { values: vec![1.0, 2.0] })?;
//! let wire: Vec<u8> = p.to_bytes()?;     // send this to another process
//!
//! let q: Proxy<MyData> = Proxy::from_bytes(&wire)?;
//! assert_eq!(my_function(&q), 3.0);      // resolved just in time
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), proxy_core::Error>(())
//! ```
//!
//! ## Pieces
//!
//! | item | role |
//! |---|---|
//! | [`Proxy<T>`] | lazy reference; resolves once, thread-safe, no async runtime; serializes to its factory only |
//! | [`LockedProxy<T>`] | a proxy that refuses to resolve until unlocked |
//! | [`StoreFactory`] | store config + key + evict flag; finds or rebuilds the store in any process |
//! | [`Store`] | put / get / exists / evict / proxy, batches, byte-bounded cache, no lock around I/O |
//! | [`Connector`] | the backend contract (sync, `&self`, required batch ops) + [`Capabilities`]; [`Deferrable`] for futures |
//! | [`registry`] | connector kinds (rebuild from config) and store URL schemes (`file://`, `redis://`, ...) |
//! | [`stores`] | the process's one store registry: named stores, and the stores proxies resolve against |
//! | [`codec`] | ProxyStore's wire format (`BS`, `US`, `NP`) + postcard (`RP`) for any serde type |
//! | [`metrics`] | per-store counters and latency histograms (connector / serialize / cache time), JSON export |
//! | [`Error`] | one `#[non_exhaustive]` error enum with [`Error::is_temporary`] |
//! | `conformance` | (feature `conformance`) the suite every connector runs unchanged |
//!
//! ## Connectors
//!
//! | connector | crate | cross-process | cross-node | zero-copy get | deferrable |
//! |---|---|---|---|---|---|
//! | [`LocalConnector`] | here | no | no | yes | yes |
//! | [`FileConnector`] | here | yes | shared FS | yes (mmap) | yes |
//! | [`MultiConnector`] | here | if all children | if all children | if all children | no |
//! | Redis | `redis-connector` | yes | yes | no | yes |
//! | UCX | `ucx-connector` | yes | yes | yes (RMA get into registered memory) | no |
//!
//! ## Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `conformance` | no | the public `conformance` module and `conformance_suite!` macro |

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod connector;
pub mod connectors;
pub mod error;
pub mod key;
pub mod mem;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod size;
pub mod store;
pub mod stores;
pub mod url;

mod cache;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use bytes::Bytes;
pub use codec::{NdArray, Object};
pub use config::StoreConfig;
pub use connector::{
    Capabilities, Connector, ConnectorConfig, Deferrable, DynConnector, FromConfig, Payload,
};
pub use connectors::file::{FileConnector, FileKey};
pub use connectors::local::LocalConnector;
pub use connectors::multi::{MultiConnector, Policy};
pub use error::{Error, Result};
pub use key::Key;
pub use proxy::{LockedProxy, Proxy, ProxyOptions, StoreFactory};
pub use store::{IntoDynConnector, Store, StoreBuilder};
