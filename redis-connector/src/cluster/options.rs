//! The cluster connector's serializable options and its builder.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECV_POOL_BYTES, DEFAULT_TIMEOUT, REDIS_MAX_STRING};

/// Default of [`ClusterOptions::chunk_size`]: 64 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;
/// Default of [`ClusterOptions::max_object_size`]: 4 GiB.
pub const DEFAULT_CLUSTER_MAX_OBJECT: u64 = 4 << 30;
/// Default of [`ClusterOptions::failover_timeout_ms`]: 20 s.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(20);

/// The serializable options of a
/// [`RedisClusterConnector`](crate::RedisClusterConnector) (its
/// [`ConnectorConfig`](proxy_core::ConnectorConfig)).
///
/// `password` is accepted when reading a configuration but never written.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterOptions {
    /// Seed nodes, `host:port` each (any reachable one is enough: the
    /// others are learned from `CLUSTER SLOTS`).
    pub nodes: Vec<String>,
    /// ACL user name (Redis 6+); `None` is the default user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password; when absent, `PROXYSTORE_REDIS_PASSWORD` is read. Never serialized.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Prepended to every key name (no `{` or `}`: the hash tag is the
    /// connector's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Connect timeout in milliseconds.
    #[serde(
        default = "default_connect_ms",
        skip_serializing_if = "is_default_connect_ms"
    )]
    pub connect_timeout_ms: u64,
    /// Operation timeout in milliseconds: the longest wait for a node in one
    /// socket read or write (0 = none).
    #[serde(
        default = "default_timeout_ms",
        skip_serializing_if = "is_default_timeout_ms"
    )]
    pub timeout_ms: u64,
    /// How long an operation keeps retrying while its slot has no reachable
    /// master (a failover, a node restarting) or is being migrated
    /// (`TRYAGAIN`), in milliseconds; then it fails with a temporary error.
    #[serde(
        default = "default_failover_ms",
        skip_serializing_if = "is_default_failover_ms"
    )]
    pub failover_timeout_ms: u64,
    /// Objects larger than this are stored as chunks of this size under one
    /// hash tag (default 64 MiB; at most 512 MiB, Redis' string limit).
    #[serde(default = "default_chunk", skip_serializing_if = "is_default_chunk")]
    pub chunk_size: u64,
    /// Delete the data on `close`: `FLUSHDB` on every master (or, with a
    /// prefix, only the prefix's keys). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear: bool,
    /// Largest object accepted, in bytes (default 4 GiB).
    #[serde(default = "default_max", skip_serializing_if = "is_default_max")]
    pub max_object_size: u64,
    /// Bytes of receive buffers kept for reuse (default 256 MiB; 0 = none).
    #[serde(default = "default_pool", skip_serializing_if = "is_default_pool")]
    pub recv_pool_bytes: u64,
}

fn default_connect_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT.as_millis() as u64
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT.as_millis() as u64
}
fn default_failover_ms() -> u64 {
    DEFAULT_FAILOVER_TIMEOUT.as_millis() as u64
}
fn default_chunk() -> u64 {
    DEFAULT_CHUNK_SIZE
}
fn default_max() -> u64 {
    DEFAULT_CLUSTER_MAX_OBJECT
}
fn default_pool() -> u64 {
    DEFAULT_RECV_POOL_BYTES
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
fn is_default_failover_ms(v: &u64) -> bool {
    *v == default_failover_ms()
}
fn is_default_chunk(v: &u64) -> bool {
    *v == default_chunk()
}
fn is_default_max(v: &u64) -> bool {
    *v == default_max()
}
fn is_default_pool(v: &u64) -> bool {
    *v == default_pool()
}

impl ClusterOptions {
    /// Options with these seed nodes and every default.
    pub fn new(nodes: Vec<String>) -> Self {
        ClusterOptions {
            nodes,
            username: None,
            password: None,
            prefix: String::new(),
            connect_timeout_ms: default_connect_ms(),
            timeout_ms: default_timeout_ms(),
            failover_timeout_ms: default_failover_ms(),
            chunk_size: default_chunk(),
            clear: false,
            max_object_size: default_max(),
            recv_pool_bytes: default_pool(),
        }
    }

    /// Why these options cannot work, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("option 'nodes' is empty: give at least one host:port".into());
        }
        for n in &self.nodes {
            if super::slots::split_addr(n).is_none() {
                return Err(format!("node {n:?} is not host:port"));
            }
        }
        if self.prefix.contains(['{', '}']) {
            return Err(format!(
                "prefix {:?} contains '{{' or '}}': the hash tag of every key is the connector's",
                self.prefix
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err("option 'connect_timeout_ms' is 0".into());
        }
        if self.chunk_size == 0 || self.chunk_size > REDIS_MAX_STRING {
            return Err(format!(
                "option 'chunk_size' is {}: it must be 1 ..= {REDIS_MAX_STRING} (Redis' string limit)",
                self.chunk_size
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("failover_timeout_ms", &self.failover_timeout_ms)
            .field("chunk_size", &self.chunk_size)
            .field("clear", &self.clear)
            .field("max_object_size", &self.max_object_size)
            .field("recv_pool_bytes", &self.recv_pool_bytes)
            .finish()
    }
}

/// Builder for a [`RedisClusterConnector`](crate::RedisClusterConnector)
/// (see [`RedisClusterConnector::builder`](crate::RedisClusterConnector::builder)).
#[derive(Debug, Clone)]
pub struct ClusterConnectorBuilder {
    pub(crate) opts: ClusterOptions,
}

impl ClusterConnectorBuilder {
    crate::options::common_setters!("4 GiB");

    /// How long an operation waits for its slot's master (default 20 s).
    pub fn failover_timeout(mut self, t: Duration) -> Self {
        self.opts.failover_timeout_ms = t.as_millis() as u64;
        self
    }

    /// Chunk size of large objects (default 64 MiB).
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.opts.chunk_size = bytes;
        self
    }

    /// Build the connector. No connection is made yet.
    pub fn build(self) -> proxy_core::Result<super::RedisClusterConnector> {
        super::RedisClusterConnector::from_options(self.opts)
    }
}
