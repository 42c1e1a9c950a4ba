#![doc = include_str!("../README.md")]
//!
//! ## The crate's API
//!
//! One server process per node keeps objects in registered, pre-faulted
//! segments (the arena), serves a TCP control plane ([`proto`]) with a
//! per-job secret ([`Secret`]), and registers every segment with each of its
//! transports, so that a key names an object, not a transport: a producer
//! that put over one transport and a consumer that reads over another share
//! objects. A fabric plugs in by implementing [`ServerTransport`] and
//! [`ClientTransport`] ([`transport`] shows how UCX, libfabric and Mercury
//! map onto them); [`ObjectClient`] is then its `proxy_core::Connector`,
//! with peer and segment caches, pipelined one-sided gets into the shared
//! receive pool, one-sided puts into reserved slots, spawn on demand and an
//! in-process owner mode. [`cli`] is the server program's main.
#![warn(missing_docs)]

pub(crate) mod arena;
mod auth;
pub mod cli;
mod client;
mod config;
mod cooling;
pub mod handshake;
mod hugepages;
pub mod layout;
mod memory;
pub mod proto;
mod server;
pub mod spawn;
pub mod stream;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use auth::{AUTH_ENV, SECRET_ENV, SECRET_FILE_ENV, Secret, USER_SECRET_FILE_ENV};
pub use client::{
    ControlError, MAPPED_COPY_BELOW, ObjectClient, ObjectKey, OwnerOptions, client_query_keys,
    config_from_url,
};
pub use config::{ClientOptions, NODE_SERVER_ENV, TransportConfig};
pub use cooling::REUSE_GRACE;
pub use hugepages::{HUGE_PAGES_ENV, turned_off as huge_pages_turned_off};
pub use memory::{Memory, SlotWriter};
pub use proto::{DataPath, Stats};
pub use server::{HELLO_TIMEOUT, MAX_GREETING, RelayOptions, Server, ServerOptions, remote_stats};
pub use spawn::{ServerBinary, locate_server};
pub use transport::{Access, ClientTransport, Operation, Registration, ServerTransport};
