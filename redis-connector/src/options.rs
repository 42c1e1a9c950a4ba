//! The connector's serializable options and its builder.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECV_POOL_BYTES, DEFAULT_TIMEOUT, REDIS_MAX_STRING};

/// The serializable options of a [`RedisConnector`](crate::RedisConnector) (its
/// [`ConnectorConfig`](proxy_core::ConnectorConfig)).
///
/// `password` is accepted when reading a configuration but never written.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisOptions {
    /// Server host name or address (`hostname`, as in ProxyStore's
    /// `RedisConnector.config()`, is accepted too).
    #[serde(default = "default_host", alias = "hostname")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database number (`SELECT`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub db: i64,
    /// ACL user name (Redis 6+); `None` is the default user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password; when absent, `PROXYSTORE_REDIS_PASSWORD` is read. Never serialized.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Prepended to every key name (empty for ProxyStore compatibility).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Connect timeout in milliseconds.
    #[serde(
        default = "default_connect_ms",
        skip_serializing_if = "is_default_connect_ms"
    )]
    pub connect_timeout_ms: u64,
    /// Operation timeout in milliseconds: the longest wait for the server in
    /// one socket read or write (0 = none).
    #[serde(
        default = "default_timeout_ms",
        skip_serializing_if = "is_default_timeout_ms"
    )]
    pub timeout_ms: u64,
    /// Delete the data on `close`: `FLUSHDB` (or, with a prefix, only the
    /// prefix's keys). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear: bool,
    /// Largest object accepted, in bytes (default 512 MiB, Redis' limit;
    /// raise it only with the server's `proto-max-bulk-len`).
    #[serde(default = "default_max", skip_serializing_if = "is_default_max")]
    pub max_object_size: u64,
    /// Bytes of receive buffers (for values of 256 KiB and more) kept for reuse
    /// after the values read into them are dropped (default 256 MiB; 0 = none).
    #[serde(default = "default_pool", skip_serializing_if = "is_default_pool")]
    pub recv_pool_bytes: u64,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    6379
}
fn default_connect_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT.as_millis() as u64
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT.as_millis() as u64
}
fn default_max() -> u64 {
    REDIS_MAX_STRING
}
fn default_pool() -> u64 {
    DEFAULT_RECV_POOL_BYTES
}
// Options at their defaults are not written, keeping proxies small.
fn is_zero(v: &i64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_default_connect_ms(v: &u64) -> bool {
    *v == default_connect_ms()
}
fn is_default_timeout_ms(v: &u64) -> bool {
    *v == default_timeout_ms()
}
fn is_default_max(v: &u64) -> bool {
    *v == default_max()
}
fn is_default_pool(v: &u64) -> bool {
    *v == default_pool()
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            host: default_host(),
            port: default_port(),
            db: 0,
            username: None,
            password: None,
            prefix: String::new(),
            connect_timeout_ms: default_connect_ms(),
            timeout_ms: default_timeout_ms(),
            clear: false,
            max_object_size: default_max(),
            recv_pool_bytes: default_pool(),
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("clear", &self.clear)
            .field("max_object_size", &self.max_object_size)
            .field("recv_pool_bytes", &self.recv_pool_bytes)
            .finish()
    }
}

/// Builder for a [`RedisConnector`](crate::RedisConnector) (see [`RedisConnector::builder`](crate::RedisConnector::builder)).
#[derive(Debug, Clone)]
pub struct RedisConnectorBuilder {
    pub(crate) opts: RedisOptions,
}

impl RedisConnectorBuilder {
    /// Database number (default 0).
    pub fn db(mut self, db: i64) -> Self {
        self.opts.db = db;
        self
    }

    common_setters!("512 MiB");
}

/// The builder setters of the options both connectors have (`$max`: the
/// default of `max_object_size`, for its docs).
macro_rules! common_setters {
    ($max:literal) => {
        /// ACL user name.
        pub fn username(mut self, user: impl Into<String>) -> Self {
            self.opts.username = Some(user.into());
            self
        }

        /// Password (otherwise `PROXYSTORE_REDIS_PASSWORD` is read, if set).
        pub fn password(mut self, password: impl Into<String>) -> Self {
            self.opts.password = Some(password.into());
            self
        }

        /// Key prefix (default empty; empty is the ProxyStore-compatible
        /// layout of the single-server connector).
        pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
            self.opts.prefix = prefix.into();
            self
        }

        /// Connect timeout (default 5 s).
        pub fn connect_timeout(mut self, t: std::time::Duration) -> Self {
            self.opts.connect_timeout_ms = t.as_millis().max(1) as u64;
            self
        }

        /// Operation timeout (default 60 s): the longest wait for a server
        /// in one socket read or write; `Duration::ZERO` disables it.
        pub fn timeout(mut self, t: std::time::Duration) -> Self {
            self.opts.timeout_ms = t.as_millis() as u64;
            self
        }

        /// Delete the data on `close` (default false).
        pub fn clear(mut self, clear: bool) -> Self {
            self.opts.clear = clear;
            self
        }

        #[doc = concat!("Largest object accepted (default ", $max, ").")]
        pub fn max_object_size(mut self, bytes: u64) -> Self {
            self.opts.max_object_size = bytes;
            self
        }

        /// Receive-buffer bytes kept for reuse (default 256 MiB; 0 disables).
        pub fn recv_pool_bytes(mut self, bytes: u64) -> Self {
            self.opts.recv_pool_bytes = bytes;
            self
        }
    };
}
pub(crate) use common_setters;
