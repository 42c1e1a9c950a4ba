//! Options every object-server connector shares, and the trait a
//! transport's configuration implements around them: transport-neutral
//! types below both the client ([`ObjectClient`](crate::ObjectClient)) and
//! the transport traits ([`crate::transport`]), which name a configuration
//! but never the client.

use std::time::Duration;

use proxy_core::url::QueryKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::proto::DataPath;
use crate::spawn::ServerBinary;

pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_IDLE_BYTES: u64 = 2 << 30;
const DEFAULT_MAX_IN_FLIGHT: usize = 64;
const DEFAULT_RMA_PUT_THRESHOLD: u64 = 256 << 10;
const DEFAULT_SPAWN_IDLE_EXIT_S: u64 = 600;

fn is_default_data_path(v: &DataPath) -> bool {
    *v == DataPath::Auto
}
fn is_default_timeout_ms(v: &u64) -> bool {
    *v == DEFAULT_TIMEOUT_MS
}
fn is_default_max_idle_bytes(v: &u64) -> bool {
    *v == DEFAULT_MAX_IDLE_BYTES
}
fn is_default_max_in_flight(v: &usize) -> bool {
    *v == DEFAULT_MAX_IN_FLIGHT
}
fn is_default_rma_put_threshold(v: &u64) -> bool {
    *v == DEFAULT_RMA_PUT_THRESHOLD
}
fn is_default_spawn_idle_exit_s(v: &u64) -> bool {
    *v == DEFAULT_SPAWN_IDLE_EXIT_S
}
fn is_true(v: &bool) -> bool {
    *v
}
fn yes() -> bool {
    true
}

/// Options of a connector to an object server (part of its configuration).
///
/// Only options that differ from their defaults are written into a
/// configuration (and so into every proxy), which keeps proxies small; absent
/// options read back as their defaults. `secret` is read but never written.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// `host:port` of the object server that puts go to. Gets go to the
    /// server named in each key.
    pub server: String,
    /// Which data path gets take (see [`DataPath`]).
    #[serde(skip_serializing_if = "is_default_data_path")]
    pub data_path: DataPath,
    /// Bound on any single wait (a get, a control round trip), in milliseconds.
    #[serde(skip_serializing_if = "is_default_timeout_ms")]
    pub timeout_ms: u64,
    /// Idle registered receive memory kept for reuse, in bytes (default
    /// 2 GiB: room for the buffer of one 1 GiB object besides smaller ones).
    #[serde(skip_serializing_if = "is_default_max_idle_bytes")]
    pub max_idle_bytes: u64,
    /// Gets in flight at once in `get_batch`.
    #[serde(skip_serializing_if = "is_default_max_in_flight")]
    pub max_in_flight: usize,
    /// Objects of at least this many bytes are put with one-sided puts
    /// into a slot reserved on the server (RMA data path only); smaller ones
    /// travel on the control connection. `u64::MAX` disables RMA puts.
    #[serde(skip_serializing_if = "is_default_rma_put_threshold")]
    pub rma_put_threshold: u64,
    /// Start a server on this node when none answers at `server` (see the
    /// crate README, "Spawn on demand").
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spawn: bool,
    /// Extra arguments for a spawned server (e.g. `["--memory-limit", "16G"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spawn_args: Vec<String>,
    /// A spawned server stops after this many seconds with no object and no
    /// client (0: never).
    #[serde(skip_serializing_if = "is_default_spawn_idle_exit_s")]
    pub spawn_idle_exit_s: u64,
    /// Read objects of a server on this node in place: map its segments
    /// once, pin each object while its `Bytes` live, no copy at all (see the
    /// crate README, "Same-node reads without a copy"). Taken when the server
    /// runs on this node (same boot id, PID and IPC namespaces: see
    /// `proto::host_id`) and its segment files can be opened here; otherwise gets copy over the data path. `false` turns it off
    /// (and, for an owner, keeps its segments private).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub zero_copy: bool,
    /// The job's secret for servers started with one; when absent,
    /// `PROXYSTORE_SERVER_SECRET` (or the file named by
    /// `PROXYSTORE_SERVER_SECRET_FILE`) is read. Never serialized, so never
    /// part of a proxy.
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    /// `host:port` of this node's object server, through which objects of
    /// servers on other nodes are read (fetched once per node into a replica
    /// there, read in place here: see the crate README, "One object, many
    /// nodes"); when absent, [`NODE_SERVER_ENV`] is read. A property of the
    /// process where a proxy resolves, never of the proxy: never serialized.
    #[serde(skip)]
    pub node_server: Option<String>,
}

/// The environment variable naming this node's object server
/// ([`ClientOptions::node_server`]); empty or unset: none.
pub const NODE_SERVER_ENV: &str = "PROXYSTORE_NODE_SERVER";

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("server", &self.server)
            .field("data_path", &self.data_path)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_idle_bytes", &self.max_idle_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("rma_put_threshold", &self.rma_put_threshold)
            .field("spawn", &self.spawn)
            .field("spawn_args", &self.spawn_args)
            .field("spawn_idle_exit_s", &self.spawn_idle_exit_s)
            .field("zero_copy", &self.zero_copy)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("node_server", &self.node_server)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            server: String::new(),
            data_path: DataPath::Auto,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_idle_bytes: DEFAULT_MAX_IDLE_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            rma_put_threshold: DEFAULT_RMA_PUT_THRESHOLD,
            spawn: false,
            spawn_args: Vec::new(),
            spawn_idle_exit_s: DEFAULT_SPAWN_IDLE_EXIT_S,
            zero_copy: true,
            secret: None,
            node_server: None,
        }
    }
}

impl ClientOptions {
    /// The timeout as a duration (at least 1 ms).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// A transport's configuration: the shared [`ClientOptions`] (flattened into
/// it) and the transport's own options. It is what `config()` writes and
/// what a proxy carries, so it must serialize without secrets.
pub trait TransportConfig:
    Serialize + DeserializeOwned + Clone + Default + std::fmt::Debug + Send + Sync + 'static
{
    /// The server program that spawn on demand starts for a connector of
    /// this configuration (see [`crate::spawn`]).
    const SERVER: ServerBinary;

    /// The query keys of this transport's own options in its store URLs
    /// (besides the shared ones of
    /// [`client_query_keys`](crate::client_query_keys)); none by default.
    const QUERY_KEYS: &'static [QueryKey<Self>] = &[];

    /// The shared options.
    fn client(&self) -> &ClientOptions;
    /// The shared options, mutably.
    fn client_mut(&mut self) -> &mut ClientOptions;

    /// Arguments a spawned server needs to serve what this configuration
    /// reads with (e.g. the same UCX transports); none by default.
    fn server_args(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builder: the server address.
    fn with_server(mut self, server: impl Into<String>) -> Self {
        self.client_mut().server = server.into();
        self
    }
    /// Builder: set the data path.
    fn with_data_path(mut self, p: DataPath) -> Self {
        self.client_mut().data_path = p;
        self
    }
    /// Builder: spawn a server on this node when none answers, with extra
    /// server arguments.
    fn with_spawn<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let c = self.client_mut();
        c.spawn = true;
        c.spawn_args = args.into_iter().map(Into::into).collect();
        self
    }
    /// Builder: read same-node objects in place (`true`, the default) or
    /// always copy them (`false`).
    fn with_zero_copy(mut self, on: bool) -> Self {
        self.client_mut().zero_copy = on;
        self
    }
    /// Builder: set the timeout.
    fn with_timeout(mut self, t: Duration) -> Self {
        self.client_mut().timeout_ms = t.as_millis() as u64;
        self
    }
    /// Builder: this node's object server (never serialized; see
    /// [`ClientOptions::node_server`]).
    fn with_node_server(mut self, server: impl Into<String>) -> Self {
        self.client_mut().node_server = Some(server.into());
        self
    }
    /// Builder: the job's secret (never serialized).
    fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_mut().secret = Some(secret.into());
        self
    }
}
