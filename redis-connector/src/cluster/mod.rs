//! [`RedisClusterConnector`]: objects in a Redis Cluster (see its docs for
//! the layout, routing and guarantees).

mod chunks;
mod cmd;
mod ops;
mod options;
mod route;
mod slots;
mod url;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use proxy_core::{Error, Result};

pub use options::{
    ClusterConnectorBuilder, ClusterOptions, DEFAULT_CHUNK_SIZE, DEFAULT_CLUSTER_MAX_OBJECT,
    DEFAULT_FAILOVER_TIMEOUT,
};
pub(crate) use url::config_from_url;

use crate::error::{Failure, RedisFailure, classify};
use crate::{PASSWORD_ENV, buf};

/// The cluster connector's kind (and store URL scheme).
pub const CLUSTER_KIND: &str = "redis+cluster";
pub(crate) const KIND: &str = CLUSTER_KIND;

/// Objects in a Redis Cluster.
///
/// - **Routing.** Every key name is `prefix{uuid}`: its hash tag is the
///   object's UUID, so an object's key and all of its chunks live in one
///   slot. The slot map is read with `CLUSTER SLOTS` from any reachable node
///   (the configured seeds, then the masters learned), at first use and
///   again after a `MOVED` or an unreachable master.
/// - **Redirects.** `MOVED` updates the slot map and refreshes it; `ASK`
///   (a slot being migrated) sends that one command to the importing node
///   after `ASKING`; `TRYAGAIN`, `CLUSTERDOWN` and a master that cannot be
///   reached (a failover under way) are retried with a growing pause until
///   [`failover_timeout_ms`](ClusterOptions::failover_timeout_ms), then fail
///   with a temporary error. When no node of the cluster answers at all an
///   operation fails at once (temporary).
/// - **Batches.** `put_batch` and `get_batch` are one pipeline per node
///   (all commands sent, then all replies read): one round trip per node,
///   not per object. (`MGET`/`MSET` cannot span slots.)
/// - **Large objects.** An object larger than
///   [`chunk_size`](ClusterOptions::chunk_size) (default 64 MiB) is stored as
///   chunks `prefix{uuid}:GEN:0`, `:GEN:1`, ... and then, last, a manifest
///   hash under `prefix{uuid}` (fields `size`, `chunk`, `gen`), so a reader sees the whole
///   object or nothing. A get whose `GET` meets the hash (`WRONGTYPE`) reads
///   the manifest, then receives the chunks straight into one pooled buffer
///   of the object's size: the returned `Bytes` is that one buffer.
/// - **Deferrable** (proxy futures): `set` replaces an object atomically for
///   readers (chunks of a fresh generation, then a manifest renamed over the
///   name); `wait_for` polls.
///
/// The data path is the Redis connector's: the minimal RESP reader, values
/// written from the payload's own buffers, large values received into
/// recycled buffers.
pub struct RedisClusterConnector {
    pub(crate) opts: ClusterOptions,
    /// Resolved password (config or environment); never printed.
    pub(crate) password: Option<String>,
    /// Idle connections per node (`host:port`).
    pub(crate) nodes: Mutex<HashMap<Arc<str>, Arc<route::Node>>>,
    /// Which master serves each slot (`None` until first read).
    pub(crate) slots: RwLock<Option<Arc<slots::SlotMap>>>,
    /// When the slot map was last read, and the node that answered (asked
    /// first next time: a dead master that drops packets would otherwise
    /// cost a connect timeout on every refresh).
    pub(crate) last_refresh: Mutex<(Option<Instant>, Option<Arc<str>>)>,
    /// Recycled receive buffers of large values.
    pub(crate) recv_pool: Arc<buf::Pool>,
}

impl fmt::Debug for RedisClusterConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisClusterConnector({})", self.opts.nodes.join(","))
    }
}

impl RedisClusterConnector {
    /// A connector to the cluster these seed nodes (`host:port`) belong to.
    pub fn new<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Result<Self> {
        Self::builder(nodes).build()
    }

    /// A builder for a connector to the cluster of these seed nodes.
    pub fn builder<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> ClusterConnectorBuilder {
        ClusterConnectorBuilder {
            opts: ClusterOptions::new(nodes.into_iter().map(Into::into).collect()),
        }
    }

    /// A connector from its options (checked; nothing is connected yet).
    pub fn from_options(opts: ClusterOptions) -> Result<Self> {
        opts.check().map_err(|why| Error::config(KIND, why))?;
        let password = opts
            .password
            .clone()
            .or_else(|| std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()));
        let pool = usize::try_from(opts.recv_pool_bytes).unwrap_or(usize::MAX);
        Ok(RedisClusterConnector {
            opts,
            password,
            nodes: Mutex::new(HashMap::new()),
            slots: RwLock::new(None),
            last_refresh: Mutex::new((None, None)),
            recv_pool: buf::Pool::new(pool),
        })
    }

    /// The options (the password, if any, is redacted in their `Debug`).
    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// Read the cluster's slot map now (it is otherwise read at first use):
    /// fails if no seed node answers or the cluster has no master for some
    /// slot.
    pub fn ping(&self) -> Result<()> {
        self.refresh("ping", true)?;
        let map = self.slot_map("ping")?;
        match (0..slots::SLOTS as u16).find(|&s| map.owner(s).is_none()) {
            None => Ok(()),
            Some(s) => Err(Error::temporary(
                KIND,
                "ping",
                format!("slot {s} of the Redis Cluster has no master"),
            )),
        }
    }

    /// The masters of the cluster as last read (`host:port`).
    pub fn masters(&self) -> Result<Vec<String>> {
        Ok(self
            .slot_map("masters")?
            .masters()
            .iter()
            .map(|a| a.to_string())
            .collect())
    }

    pub(crate) fn op_timeout(&self) -> Option<Duration> {
        (self.opts.timeout_ms > 0).then(|| Duration::from_millis(self.opts.timeout_ms))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.opts.connect_timeout_ms)
    }

    /// A Redis error of `op` on node `addr` (empty: the cluster) as an [`Error`].
    pub(crate) fn map_err(&self, op: &'static str, addr: &str, e: redis::RedisError) -> Error {
        let what = if addr.is_empty() {
            format!("Redis Cluster {}", self.opts.nodes.join(","))
        } else {
            format!("Redis Cluster node {addr}")
        };
        let class = classify(&e);
        let failure = |context| RedisFailure { context, error: e };
        match class {
            Failure::Timeout => Error::Timeout {
                connector: KIND.into(),
                operation: op,
                after: self.op_timeout().unwrap_or_default(),
            },
            Failure::Auth => Error::permanent(
                KIND,
                op,
                failure(format!(
                    "{what}: authentication failed (check the username and password, or {PASSWORD_ENV})"
                )),
            ),
            Failure::Dropped => Error::temporary(KIND, op, failure(what)),
            Failure::Server | Failure::Other => Error::permanent(KIND, op, failure(what)),
        }
    }
}
