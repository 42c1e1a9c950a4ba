//! [`ObjectClient`]: the `proxy_core::Connector` over an object server, for
//! any [`ClientTransport`]: puts, exists and evicts go over the server's TCP
//! control plane; gets are one-sided reads from the server's registered
//! memory into this process's pooled registered buffers, returned as `Bytes`
//! without a copy (or, on the stream data path, read from the control
//! connection into the same buffers).

mod control;
mod get;
mod key;
mod mapped;
mod mapped_get;
mod mapped_put;
mod node;
mod peer;
mod put;
mod url;
mod write_map;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::mem::BufferPool;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Error, FromConfig, Key, Payload, Result,
};

pub use control::ControlError;
pub use key::ObjectKey;
pub use mapped::MAPPED_COPY_BELOW;
pub use url::{client_query_keys, config_from_url};

use crate::auth::Secret;
use crate::config::TransportConfig;
use crate::proto::{DataPath, Request, Response, Stats};
use crate::server::{Local, Server, ServerOptions};
use crate::transport::ClientTransport;
use control::{Ctl, Peer, unexpected};

/// Options of an in-process owner ([`ObjectClient::owner`]): this process
/// serves its own objects from its own registered arena.
#[derive(Debug, Clone)]
pub struct OwnerOptions<C> {
    /// Control-plane address to listen on (port 0: any free port).
    pub listen: std::net::SocketAddr,
    /// `host:port` that keys and the configuration name (what readers connect
    /// to). Default: the bound address, with this host's name in place of an
    /// unspecified IP (`0.0.0.0`, `::`).
    pub advertise: Option<String>,
    /// Registered memory is mapped in segments of this size.
    pub segment_size: u64,
    /// Total registered memory; a put beyond it is an error.
    pub memory_limit: u64,
    /// Write every page of new segments up front.
    pub prefault: bool,
    /// Bytes of empty segments kept mapped for reuse (see
    /// [`ServerOptions::retain`]).
    pub retain: u64,
    /// Options of the connector itself (timeout, transports, ...); `server` is
    /// replaced by the advertised address and `spawn` is ignored. Its secret,
    /// if any, is the in-process server's too.
    pub options: C,
}

impl<C: Default> Default for OwnerOptions<C> {
    fn default() -> Self {
        let s = ServerOptions::default();
        OwnerOptions {
            listen: s.listen,
            advertise: None,
            segment_size: s.segment_size,
            memory_limit: s.memory_limit,
            prefault: s.prefault,
            retain: s.retain,
            options: C::default(),
        }
    }
}

/// The in-process server of an owner connector.
struct Owner {
    /// The advertised `host:port` (keys name it).
    addr: String,
    local: Local,
    /// Stopped by `close` (or when the connector is dropped).
    server: Mutex<Option<Server>>,
}

/// The fabric side of a client: made when a get or put first needs it
/// ([`ObjectClient::fabric`]), not when the connector is made, so that a
/// process whose gets all read a same-node server's mapped segments (or
/// that only puts small objects) never initializes the fabric (UCX's
/// context, libfabric and its providers: tens to hundreds of milliseconds).
pub(crate) struct Fabric<T: ClientTransport> {
    pub(crate) transport: T,
    pub(crate) pool: BufferPool<T::Alloc>,
}

struct Inner<T: ClientTransport> {
    cfg: T::Config,
    fabric: OnceLock<Fabric<T>>,
    /// Serializes the making of `fabric`.
    fabric_init: Mutex<()>,
    peers: Mutex<HashMap<String, Arc<Peer<T>>>>,
    closed: AtomicBool,
    secret: Option<Secret>,
    /// In-process owner mode: this process's own server.
    owner: Option<Owner>,
    /// This node's server, through which objects of other nodes are read.
    node: Option<String>,
    /// Servers the node server said are on this node (read directly).
    same_node: Mutex<std::collections::HashSet<String>>,
}

/// A connector to an object server over transport `T` (see the module docs).
pub struct ObjectClient<T: ClientTransport> {
    inner: Arc<Inner<T>>,
}

impl<T: ClientTransport> Clone for ObjectClient<T> {
    fn clone(&self) -> Self {
        ObjectClient {
            inner: self.inner.clone(),
        }
    }
}

impl<T: ClientTransport> std::fmt::Debug for ObjectClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectClient")
            .field("transport", &T::NAME)
            .field("config", &self.inner.cfg)
            .finish()
    }
}

impl<T: ClientTransport> ObjectClient<T> {
    /// A connector for the server in `cfg` (nothing is contacted until first use).
    pub fn new(cfg: T::Config) -> Result<Self> {
        Self::build(cfg, None)
    }

    /// An in-process owner: starts this process's own object server (its
    /// accept loop, control threads and progress run on threads of this
    /// process, over its own registered arena). Puts copy the payload straight
    /// into registered memory here; other processes read it with one-sided
    /// gets from this process, while it is alive (`outlives_process` is false).
    /// Keys and the configuration name the advertised address, so a
    /// configuration rebuilt elsewhere is a plain client of this process.
    pub fn owner(cfg: OwnerOptions<T::Config>) -> Result<Self> {
        // The in-process server never starts open by accident: without a
        // secret given or in the environment, the user's (see `auth`).
        let secret = match Self::secret_of(&cfg.options)? {
            Some(s) => Some(s),
            None => Secret::for_server(None, false)?,
        };
        let server = Server::start(
            ServerOptions {
                listen: cfg.listen,
                segment_size: cfg.segment_size,
                memory_limit: cfg.memory_limit,
                prefault: cfg.prefault,
                retain: cfg.retain,
                secret,
                idle_exit: None,
                zero_copy: cfg.options.client().zero_copy,
                unix_socket: true,
                socket_dir: None,
                advertise: cfg.advertise.clone(),
                ..ServerOptions::default()
            },
            vec![T::serve(&cfg.options)?],
        )?;
        let bound = server.addr();
        let addr = match cfg.advertise {
            Some(a) => a,
            None if bound.ip().is_unspecified() => {
                let host = crate::stream::hostname().ok_or_else(|| {
                    Error::config(
                        T::NAME,
                        "cannot tell this host's name: set 'advertise' (host:port readers connect to)",
                    )
                })?;
                format!("{host}:{}", bound.port())
            }
            None => bound.to_string(),
        };
        let mut options = cfg.options;
        let c = options.client_mut();
        c.server = addr.clone();
        c.spawn = false;
        c.spawn_args.clear();
        let owner = Owner {
            addr,
            local: server.local(),
            server: Mutex::new(Some(server)),
        };
        Self::build(options, Some(owner))
    }

    fn secret_of(cfg: &T::Config) -> Result<Option<Secret>> {
        Secret::for_client(cfg.client().secret.as_deref())
    }

    fn build(cfg: T::Config, owner: Option<Owner>) -> Result<Self> {
        if cfg.client().server.is_empty() {
            return Err(Error::config(
                T::NAME,
                "option 'server' (host:port of the object server) is required",
            ));
        }
        let secret = Self::secret_of(&cfg)?;
        let node = cfg
            .client()
            .node_server
            .clone()
            .or_else(|| std::env::var(crate::config::NODE_SERVER_ENV).ok())
            .filter(|s| !s.trim().is_empty());
        Ok(ObjectClient {
            inner: Arc::new(Inner {
                cfg,
                fabric: OnceLock::new(),
                fabric_init: Mutex::new(()),
                peers: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                secret,
                owner,
                node,
                same_node: Mutex::new(Default::default()),
            }),
        })
    }

    /// Whether this connector serves its own objects ([`ObjectClient::owner`]).
    pub fn is_owner(&self) -> bool {
        self.inner.owner.is_some()
    }

    /// The options.
    pub fn options(&self) -> &T::Config {
        &self.inner.cfg
    }

    /// The fabric (transport and receive buffer pool), made on first use.
    pub(crate) fn fabric(&self) -> Result<&Fabric<T>> {
        if let Some(f) = self.inner.fabric.get() {
            return Ok(f);
        }
        let _made_once = self.inner.fabric_init.lock();
        if let Some(f) = self.inner.fabric.get() {
            return Ok(f);
        }
        let transport = T::new(&self.inner.cfg)?;
        let pool = BufferPool::new(
            transport.allocator(),
            self.inner.cfg.client().max_idle_bytes as usize,
        );
        Ok(self.inner.fabric.get_or_init(|| Fabric { transport, pool }))
    }

    /// Whether the fabric was initialized in this connector (a get or put
    /// needed it, or [`ObjectClient::pool`] or [`ObjectClient::transport`]
    /// was asked for).
    pub fn fabric_initialized(&self) -> bool {
        self.inner.fabric.get().is_some()
    }

    /// The receive buffer pool (for statistics; initializes the fabric).
    pub fn pool(&self) -> Result<&BufferPool<T::Alloc>> {
        Ok(&self.fabric()?.pool)
    }

    /// The transport (for statistics and tests; initializes the fabric).
    pub fn transport(&self) -> Result<&T> {
        Ok(&self.fabric()?.transport)
    }

    /// Statistics of the server in the options (this process's own, in
    /// owner mode).
    pub fn server_stats(&self) -> Result<Stats> {
        if let Some(o) = &self.inner.owner {
            return Ok(o.local.stats());
        }
        let peer = self.home_peer()?;
        match self.call(&peer, "stats", &Request::Stats, None)? {
            Ctl::Done(Response::Stats(s)) => Ok(s),
            Ctl::Done(other) => Err(unexpected(T::NAME, "stats", other)),
            Ctl::Stale => Err(Error::temporary(T::NAME, "stats", "server restarted")),
        }
    }

    /// Process id of the server in the options (this process's, in owner
    /// mode): e.g. to stop a server that was spawned on demand.
    pub fn server_pid(&self) -> Result<u32> {
        if self.inner.owner.is_some() {
            return Ok(std::process::id());
        }
        Ok(self.home_peer()?.pid)
    }

    /// The data path gets from the configured server take: the option, or
    /// with `Auto` what the server (its hint at hello, once this client has
    /// talked to it) and this process's transport agree on; before the first
    /// contact, this process's view alone.
    pub fn data_path(&self) -> DataPath {
        let c = self.inner.cfg.client();
        match c.data_path {
            DataPath::Auto => match self.inner.peers.lock().get(&c.server) {
                Some(p) => p.path,
                None if T::prefers_stream(&self.inner.cfg) => DataPath::Stream,
                None => DataPath::Rma,
            },
            p => p,
        }
    }

    /// Whether gets from the configured server read its memory in place
    /// (this process's own, in owner mode; a server on this node, once this
    /// client has talked to it and unless `zero_copy` is off).
    pub fn mapped(&self) -> bool {
        if self.inner.owner.is_some() {
            return true;
        }
        let c = self.inner.cfg.client();
        c.zero_copy
            && self
                .inner
                .peers
                .lock()
                .get(&c.server)
                .and_then(|p| p.mapped.as_ref())
                .is_some_and(|m| m.usable())
    }

    /// Whether the configured server was found on this host (same kernel,
    /// PID and IPC namespaces, see [`proto::host_id`](crate::proto::host_id)),
    /// so that gets try its memory in place, once this client has talked to
    /// it. Unlike [`mapped`](Self::mapped), also `true` when mapping was
    /// tried and failed; `false` for a server on another node.
    pub fn server_on_this_host(&self) -> bool {
        let c = self.inner.cfg.client();
        self.inner
            .peers
            .lock()
            .get(&c.server)
            .is_some_and(|p| p.mapped.is_some())
    }

    /// The local arena, if `k` names this process's own server.
    fn local_for(&self, k: &ObjectKey) -> Option<&Local> {
        self.inner
            .owner
            .as_ref()
            .filter(|o| o.addr == k.server)
            .map(|o| &o.local)
    }

    fn timeout(&self) -> Duration {
        self.inner.cfg.client().timeout()
    }

    fn check_open(&self, op: &'static str) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::permanent(T::NAME, op, "connector is closed"))
        } else {
            Ok(())
        }
    }

    fn decode(&self, key: &Key) -> Result<ObjectKey> {
        let k: ObjectKey = key.decode(T::NAME)?;
        if k.server.is_empty() {
            return Err(Error::InvalidKey {
                connector: T::NAME.into(),
                reason: "empty server address".into(),
            });
        }
        Ok(k)
    }

    fn evict_one(&self, key: &Key) -> Result<()> {
        let k = self.decode(key)?;
        if let Some(local) = self.local_for(&k) {
            if k.instance == local.instance() {
                local.evict(&k.loc());
            }
            return Ok(());
        }
        let Some(peer) = self.peer_for(&k.server, k.instance)? else {
            return Ok(());
        };
        match self.call(&peer, "evict", &Request::Evict(k.loc()), None)? {
            Ctl::Done(Response::Ok) | Ctl::Stale => Ok(()),
            Ctl::Done(other) => Err(unexpected(T::NAME, "evict", other)),
        }
    }
}

impl<T: ClientTransport> Connector for ObjectClient<T> {
    fn kind(&self) -> &'static str {
        T::NAME
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::MINIMAL;
        c.cross_process = true;
        c.cross_node = true;
        // An owner's objects live in its own process.
        c.outlives_process = self.inner.owner.is_none();
        c.one_sided_get = self.inner.owner.is_none() && self.data_path() == DataPath::Rma;
        c.zero_copy_get = true;
        c.mapped_get = self.mapped();
        c
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let mut keys = self.put_batch(vec![data])?;
        Ok(keys.pop().expect("one key per payload"))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        self.check_open("put")?;
        self.put_many(&data)
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.check_open("get")?;
        self.get_one(key)
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.check_open("get")?;
        self.get_many(keys)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        self.check_open("exists")?;
        let k = self.decode(key)?;
        if let Some(local) = self.local_for(&k) {
            return Ok(k.instance == local.instance() && local.exists(&k.loc()));
        }
        let Some(peer) = self.peer_for(&k.server, k.instance)? else {
            return Ok(false);
        };
        match self.call(&peer, "exists", &Request::Exists(k.loc()), None)? {
            Ctl::Done(Response::Bool(b)) => Ok(b),
            Ctl::Done(other) => Err(unexpected(T::NAME, "exists", other)),
            Ctl::Stale => Ok(false),
        }
    }

    fn evict(&self, key: &Key) -> Result<()> {
        self.check_open("evict")?;
        self.evict_one(key)
    }

    /// Drops connections, endpoints and cached descriptors. Objects stay on
    /// the server (it outlives this connector); `Bytes` already handed out
    /// stay valid. An owner stops its in-process server: its objects are gone
    /// for readers elsewhere (`Bytes` handed out here stay valid). A second
    /// `close` does nothing.
    fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(o) = &self.inner.owner {
            let server = o.server.lock().take();
            if let Some(s) = server {
                s.shutdown();
            }
        }
        self.inner.peers.lock().clear();
        if let Some(f) = self.inner.fabric.get() {
            f.transport.quiesce();
        }
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(T::NAME, &self.inner.cfg)
    }
}

impl<T: ClientTransport> FromConfig for ObjectClient<T> {
    const KIND: &'static str = T::NAME;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(T::NAME)?;
        ObjectClient::new(config.options::<T::Config>()?)
    }
}
