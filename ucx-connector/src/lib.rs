//! UCX connector for proxystore-rs.
//!
//! See the crate README for the design: an object server keeps objects in
//! registered memory; readers fetch them with one-sided gets.
#![warn(missing_docs)]

pub mod arena;
mod connector;
pub mod pool;
pub mod proto;
pub mod server;
mod spawn;
pub mod ucx;

pub use connector::{KIND, UcxConfig, UcxConnector, UcxKey, UcxOwnerConfig, register};
pub use proto::DataPath;
pub use spawn::{SERVER_ENV, locate_server};
