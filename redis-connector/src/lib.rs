//! # redis-connector
//!
//! Two connectors: [`RedisConnector`], one Redis server (below), and
//! [`RedisClusterConnector`], a Redis Cluster (see its docs).
//!
//! A [`Connector`] for proxystore-rs that keeps objects in a Redis server,
//! compatible with the Python ProxyStore's `RedisConnector`
//! (`proxystore.connectors.redis`): an object one side stores is read by the
//! other from its key.
//!
//! ```no_run
//! use proxy_core::{Proxy, Store};
//! use redis_connector::RedisConnector;
//!
//! redis_connector::register(); // so proxies of kind "redis" resolve in this process
//! let store = Store::new("shared", RedisConnector::new("127.0.0.1", 6379)?)?;
//! let p: Proxy<Vec<f64>> = store.proxy(vec![1.0, 2.0, 3.0])?;
//! let wire = p.to_bytes()?; // send to another process, which calls register() too
//! # Ok::<(), proxy_core::Error>(())
//! ```
//!
//! ## Keys
//!
//! Every object is stored under a UUID v4 string (hyphenated, lower case),
//! exactly as ProxyStore's `RedisKey.redis_key`, preceded by the optional
//! [`prefix`](RedisConnectorBuilder::prefix) (leave it empty to share objects
//! with Python). The proxy-core [`Key`] holds the 16 UUID bytes ([`RedisKey`]);
//! convert with [`RedisKey::from_redis_key`] / [`RedisKey::redis_key`].
//!
//! ## Guarantees
//!
//! - Connections are reused: an idle pool of connections (no connect per
//!   operation, no lock held across I/O: each thread takes its own connection
//!   out of the pool for the duration of one operation).
//! - Batches are one round trip: `put_batch` is `MSET` (split in groups of at
//!   most 64 MiB), `get_batch` is `MGET`.
//! - A value is written with one `SET`, so a reader sees all of it or nothing.
//! - Objects larger than Redis' string limit (512 MiB, or the configured
//!   `max_object_size`) are refused with [`Error::TooLarge`] before anything is
//!   sent; nothing is stored.
//! - A broken connection (server restarted, killed, network reset) is dropped,
//!   and the operation is retried once on a fresh connection (all operations
//!   are idempotent: puts write fresh keys). Failures are
//!   [`Error::Connector`] with `temporary = true`, or [`Error::Timeout`].
//! - The password (option `password`, or the environment variable
//!   `PROXYSTORE_REDIS_PASSWORD`) is never printed by `Debug`, never part of
//!   error messages and never written into [`Connector::config`] (which proxies
//!   carry): a process that rebuilds the connector from a proxy takes the
//!   password from its own environment.
//!
//! ## Data path
//!
//! Writes, `EXISTS`, `DEL`, `FLUSHDB`/`SCAN` go through the `redis` crate's
//! synchronous connections; a `SET` of a large value writes the command
//! header and then the payload's own buffers to the socket (no concatenation
//! copy). Reads (`GET`/`MGET`) use a second small pool of plain TCP
//! connections with a minimal RESP reader (`AUTH`/`SELECT` as configured),
//! because the `redis` crate's parser reads 8 KiB at a time and copies each
//! value once more (a 100 MB get took ~290 ms that way, ~140 ms this way).
//! A value is received straight from the socket into its final buffer and
//! handed out as [`Bytes`] without another copy; for values of 256 KiB and more
//! that buffer is an anonymous mapping recycled through a per-connector pool
//! once every `Bytes` of it is dropped (at most
//! [`recv_pool_bytes`](RedisConnectorBuilder::recv_pool_bytes) kept idle), so
//! a stream of large gets does not pay page faults for every value.
//!
//! ## Source layout
//!
//! | module | what |
//! |---|---|
//! | `key` | [`RedisKey`] and the Redis key names (prefix + UUID) |
//! | `options` | [`RedisOptions`] (what a configuration carries) and [`RedisConnectorBuilder`] |
//! | `connector` | [`RedisConnector`]: construction and the `Connector`/`Deferrable` operations |
//! | `pool` | the two idle-connection pools and the retry-once rule |
//! | `write` | `SET`/`MSET` from the payload's own buffers, `MSET` grouping |
//! | `read` | `GET`/`MGET` on the read-path connections |
//! | `raw` | the minimal RESP reader of the read path |
//! | `buf` | the recycled receive buffers of large values |
//! | `error` | how Redis failures map to `proxy_core::Error` |
//! | `url` | `redis://` store URLs |
//! | `cluster` | [`RedisClusterConnector`] (`redis+cluster://`): slots, routing and redirects (`route`), pipelined commands (`cmd`), chunked objects (`chunks`), the operations (`ops`), options, URLs |
//!
//! [`Connector`]: proxy_core::Connector
//! [`Connector::config`]: proxy_core::Connector::config
//! [`Key`]: proxy_core::Key
//! [`Bytes`]: bytes::Bytes
//! [`Error::TooLarge`]: proxy_core::Error::TooLarge
//! [`Error::Connector`]: proxy_core::Error::Connector
//! [`Error::Timeout`]: proxy_core::Error::Timeout

#![warn(missing_docs)]

mod buf;
mod cluster;
mod connector;
mod error;
mod key;
mod options;
mod pool;
mod raw;
mod read;
mod url;
mod write;

use std::time::Duration;

pub use cluster::{
    CLUSTER_KIND, ClusterConnectorBuilder, ClusterOptions, DEFAULT_CHUNK_SIZE,
    DEFAULT_CLUSTER_MAX_OBJECT, DEFAULT_FAILOVER_TIMEOUT, RedisClusterConnector,
};
pub use connector::RedisConnector;
pub use error::RedisFailure;
pub use key::RedisKey;
pub use options::{RedisConnectorBuilder, RedisOptions};

/// The connector kind, as used in configurations.
pub const KIND: &str = "redis";

/// Redis' largest string value (`proto-max-bulk-len` default): 512 MiB.
pub const REDIS_MAX_STRING: u64 = 512 << 20;

/// Environment variable read for the password when none is configured.
pub const PASSWORD_ENV: &str = "PROXYSTORE_REDIS_PASSWORD";

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default operation timeout: the longest wait for the server in one read or
/// write on a connection (a large transfer may take longer in total).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default of [`RedisOptions::recv_pool_bytes`]: 256 MiB.
pub const DEFAULT_RECV_POOL_BYTES: u64 = 256 << 20;

/// Register the `redis` and `redis+cluster` connector kinds in this
/// process, so that stores and proxies whose configuration names them can be
/// rebuilt, and their store URL schemes
/// (`redis://[user[:password]@]host[:port][/db]`,
/// `redis+cluster://[user[:password]@]host:port[,host:port...]`).
/// Idempotent.
pub fn register() {
    proxy_core::registry::register_connector::<RedisConnector>();
    proxy_core::registry::register_scheme("redis", url::config_from_url);
    proxy_core::registry::register_connector::<RedisClusterConnector>();
    proxy_core::registry::register_scheme(CLUSTER_KIND, cluster::config_from_url);
}
