//! [`UcxConnector`]: the `proxy_core::Connector` over an object server.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Error, FromConfig, Key, Payload, Result,
};
use serde::{Deserialize, Serialize};

use crate::pool::RecvPool;
use crate::proto::{self, DataPath, Loc, Request, Response};
use crate::server::{Local, Server, ServerOptions};
use crate::ucx::{Context, Endpoint, RemoteKey, Request as RmaRequest, Worker};

/// Connector kind.
pub const KIND: &str = "ucx";

/// Options of a [`UcxConnector`] (its [`ConnectorConfig`] options).
///
/// Only options that differ from their defaults are written into a
/// configuration (and so into every proxy), which keeps proxies small; absent
/// options read back as their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct UcxConfig {
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
    /// Objects of at least this many bytes are put with one-sided RMA puts
    /// into a slot reserved on the server (RMA data path only); smaller ones
    /// travel on the control connection. `u64::MAX` disables RMA puts.
    #[serde(skip_serializing_if = "is_default_rma_put_threshold")]
    pub rma_put_threshold: u64,
    /// UCX transports of this process (`UCX_TLS` syntax, e.g. `"shm,cma,self"`
    /// or `"tcp"`); `None` keeps UCX's own choice (the `UCX_TLS` variable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucx_tls: Option<String>,
    /// Start a `proxystore-ucx-server` on this node when none answers at
    /// `server` (see the crate README, "Spawn on demand").
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spawn: bool,
    /// Extra arguments for a spawned server (e.g. `["--memory-limit", "16G"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spawn_args: Vec<String>,
}

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_IDLE_BYTES: u64 = 2 << 30;
const DEFAULT_MAX_IN_FLIGHT: usize = 64;
const DEFAULT_RMA_PUT_THRESHOLD: u64 = 256 << 10;

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

impl Default for UcxConfig {
    fn default() -> Self {
        UcxConfig {
            server: String::new(),
            data_path: DataPath::Auto,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_idle_bytes: DEFAULT_MAX_IDLE_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            rma_put_threshold: DEFAULT_RMA_PUT_THRESHOLD,
            ucx_tls: None,
            spawn: false,
            spawn_args: Vec::new(),
        }
    }
}

impl UcxConfig {
    /// Options for the server at `server` (`host:port`), defaults otherwise.
    pub fn new(server: impl Into<String>) -> Self {
        UcxConfig {
            server: server.into(),
            ..Default::default()
        }
    }

    /// Builder: set the data path.
    pub fn with_data_path(mut self, p: DataPath) -> Self {
        self.data_path = p;
        self
    }

    /// Builder: set the UCX transports (`UCX_TLS` syntax).
    pub fn with_ucx_tls(mut self, tls: impl Into<String>) -> Self {
        self.ucx_tls = Some(tls.into());
        self
    }

    /// Builder: spawn a server on this node when none answers (see
    /// [`UcxConfig::spawn`]), with extra server arguments.
    pub fn with_spawn<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spawn = true;
        self.spawn_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Builder: set the timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout_ms = t.as_millis() as u64;
        self
    }
}

/// The typed key of a UCX object (encoded into a [`Key`] with postcard, ~40 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UcxKey {
    /// `host:port` of the owning server.
    pub server: String,
    /// The server instance that stored it (a restarted server has another).
    pub instance: u64,
    /// Segment id.
    pub seg: u32,
    /// Slot offset in the segment.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
    /// Object id.
    pub id: u64,
}

impl UcxKey {
    fn loc(&self) -> Loc {
        Loc {
            seg: self.seg,
            offset: self.offset,
            len: self.len,
            id: self.id,
        }
    }
}

/// Options of an in-process owner ([`UcxConnector::owner`]): this process
/// serves its own objects from its own registered arena.
#[derive(Debug, Clone)]
pub struct UcxOwnerConfig {
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
    /// replaced by the advertised address and `spawn` is ignored.
    pub options: UcxConfig,
}

impl Default for UcxOwnerConfig {
    fn default() -> Self {
        let s = ServerOptions::default();
        UcxOwnerConfig {
            listen: s.listen,
            advertise: None,
            segment_size: s.segment_size,
            memory_limit: s.memory_limit,
            prefault: s.prefault,
            retain: s.retain,
            options: UcxConfig::default(),
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

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at
    // most that many and we look for the terminating NUL ourselves.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let n = buf.iter().position(|&b| b == 0)?;
    String::from_utf8(buf[..n].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

struct SegHandle {
    base: u64,
    len: u64,
    rkey: RemoteKey,
}

struct Peer {
    addr: String,
    instance: u64,
    pid: u32,
    path: DataPath,
    ep: Option<Endpoint>,
    /// The hello connection, never used for requests: the kernel closes it
    /// when the server process dies, which a one-byte `MSG_PEEK` sees. This
    /// is how a get notices a dead server whose memory is still mapped here
    /// (shared-memory transports keep the mapping alive).
    watch: TcpStream,
    idle: Mutex<Vec<TcpStream>>,
    /// Connections holding reservations whose RMA puts failed or timed out:
    /// UCX may still write into those slots, so they must not be released
    /// (closing the connection would) while this process lives.
    quarantine: Mutex<Vec<TcpStream>>,
    segments: Mutex<HashMap<u32, Option<Arc<SegHandle>>>>,
}

impl Peer {
    /// Whether the server process still holds its end of the watch connection.
    fn alive(&self) -> bool {
        let mut b = 0u8;
        // SAFETY: a non-blocking one-byte peek into a local on a socket we own.
        let n = unsafe {
            libc::recv(
                self.watch.as_raw_fd(),
                (&raw mut b).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // 0: orderly close (server gone); -1/EAGAIN: alive and quiet.
        n != 0 && !(n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock)
    }
}

struct Inner {
    cfg: UcxConfig,
    worker: Worker,
    pool: RecvPool,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    closed: AtomicBool,
    /// In-process owner mode: this process's own server.
    owner: Option<Owner>,
}

/// Connector to a `proxystore-ucx-server`: puts, exists and evicts go over the
/// server's TCP control plane; gets are one-sided `ucp_get_nbx` reads from the
/// server's registered memory into this process's pooled registered buffers,
/// returned as `Bytes` without a copy (or, on the stream data path, read from
/// the control connection into the same buffers).
#[derive(Clone)]
pub struct UcxConnector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UcxConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UcxConnector")
            .field("config", &self.inner.cfg)
            .finish()
    }
}

fn ctl_err(op: &'static str, addr: &str, e: io::Error) -> Error {
    Error::connector(KIND, op, true, format!("object server {addr}: {e}"))
}

fn closed_err(op: &'static str) -> Error {
    Error::connector(KIND, op, false, "connector is closed")
}

/// Whether this process's UCX transports are TCP only (option, else `UCX_TLS`).
fn tcp_only(cfg: &UcxConfig) -> bool {
    cfg.ucx_tls
        .clone()
        .or_else(|| std::env::var("UCX_TLS").ok())
        .is_some_and(|t| proto::tls_is_tcp_only(&t))
}

/// Whether this process's UCX transports are all intra-node shared memory,
/// where UCX 1.13 has no peer-failure detection (asking for it fails).
fn shm_only(cfg: &UcxConfig) -> bool {
    const SHM: [&str; 9] = [
        "self", "sm", "shm", "posix", "sysv", "cma", "knem", "xpmem", "mm",
    ];
    cfg.ucx_tls
        .clone()
        .or_else(|| std::env::var("UCX_TLS").ok())
        .is_some_and(|t| {
            t.split(',')
                .map(str::trim)
                .all(|x| x.is_empty() || SHM.contains(&x))
        })
}

/// What a server said at hello.
struct Hello {
    instance: u64,
    worker_address: Vec<u8>,
    data_path: DataPath,
    pid: u32,
}

/// Outcome of a control exchange on a connection.
enum Ctl<T> {
    Done(T),
    /// The server answered hello with another instance: our peer is stale.
    Stale,
}

impl UcxConnector {
    /// A connector for the server in `cfg` (nothing is contacted until first use).
    pub fn new(cfg: UcxConfig) -> Result<UcxConnector> {
        Self::build(cfg, None)
    }

    /// An in-process owner: starts this process's own object server (its
    /// accept loop, control threads and UCX progress run on threads of this
    /// process, over its own registered arena). Puts copy the payload straight
    /// into registered memory here; other processes read it with one-sided
    /// gets from this process, while it is alive (`outlives_process` is false).
    /// Keys and the configuration name the advertised address, so a
    /// configuration rebuilt elsewhere is a plain client of this process.
    pub fn owner(cfg: UcxOwnerConfig) -> Result<UcxConnector> {
        let server = Server::start(ServerOptions {
            listen: cfg.listen,
            segment_size: cfg.segment_size,
            memory_limit: cfg.memory_limit,
            prefault: cfg.prefault,
            retain: cfg.retain,
            ucx_tls: cfg.options.ucx_tls.clone(),
        })?;
        let bound = server.addr();
        let addr = match cfg.advertise {
            Some(a) => a,
            None if bound.ip().is_unspecified() => {
                let host = hostname().ok_or_else(|| {
                    Error::config(
                        KIND,
                        "cannot tell this host's name: set 'advertise' (host:port readers connect to)",
                    )
                })?;
                format!("{host}:{}", bound.port())
            }
            None => bound.to_string(),
        };
        let mut options = cfg.options;
        options.server = addr.clone();
        options.spawn = false;
        options.spawn_args.clear();
        let owner = Owner {
            addr,
            local: server.local(),
            server: Mutex::new(Some(server)),
        };
        Self::build(options, Some(owner))
    }

    /// Whether this connector serves its own objects ([`UcxConnector::owner`]).
    pub fn is_owner(&self) -> bool {
        self.inner.owner.is_some()
    }

    fn build(cfg: UcxConfig, owner: Option<Owner>) -> Result<UcxConnector> {
        if cfg.server.is_empty() {
            return Err(Error::config(
                KIND,
                "option 'server' (host:port of the object server) is required",
            ));
        }
        let ctx = Context::rma(cfg.ucx_tls.as_deref(), false)?;
        let worker = Worker::new(&ctx)?;
        let pool = RecvPool::new(&ctx, cfg.max_idle_bytes as usize);
        Ok(UcxConnector {
            inner: Arc::new(Inner {
                cfg,
                worker,
                pool,
                peers: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                owner,
            }),
        })
    }

    /// The options.
    pub fn options(&self) -> &UcxConfig {
        &self.inner.cfg
    }

    /// The receive buffer pool (for statistics).
    pub fn pool(&self) -> &RecvPool {
        &self.inner.pool
    }

    /// Arena statistics of the server in the options (this process's own, in
    /// owner mode).
    pub fn server_stats(&self) -> Result<proto::Stats> {
        if let Some(o) = &self.inner.owner {
            return Ok(o.local.stats());
        }
        let peer = self.home_peer()?;
        match self.call(&peer, "stats", &Request::Stats, None)? {
            Ctl::Done(Response::Stats(s)) => Ok(s),
            Ctl::Done(other) => Err(unexpected("stats", other)),
            Ctl::Stale => Err(Error::connector(KIND, "stats", true, "server restarted")),
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

    /// The peer of the configured server; with `spawn`, a server is started
    /// on this node first if none answers there.
    fn home_peer(&self) -> Result<Arc<Peer>> {
        let addr = &self.inner.cfg.server;
        match self.peer(addr) {
            Err(e) if self.inner.cfg.spawn && !crate::spawn::answers(addr) => {
                crate::spawn::spawn_server(&self.inner.cfg, self.timeout()).map_err(|s| {
                    Error::connector(KIND, "spawn", false, format!("{s} (first: {e})"))
                })?;
                self.peer(addr)
            }
            r => r,
        }
    }

    /// The local arena, if `k` names this process's own server.
    fn local_for(&self, k: &UcxKey) -> Option<&Local> {
        self.inner
            .owner
            .as_ref()
            .filter(|o| o.addr == k.server)
            .map(|o| &o.local)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.cfg.timeout_ms.max(1))
    }

    fn check_open(&self, op: &'static str) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(closed_err(op))
        } else {
            Ok(())
        }
    }

    fn decode(&self, key: &Key) -> Result<UcxKey> {
        let k: UcxKey = key.decode(KIND)?;
        if k.server.is_empty() {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: "empty server address".into(),
            });
        }
        Ok(k)
    }

    /// Open a control connection and say hello.
    fn open(&self, addr: &str) -> Result<(TcpStream, Hello)> {
        let t = self.timeout();
        let mut last = None;
        let addrs = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| ctl_err("connect", addr, e))?;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, t) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut s = stream.ok_or_else(|| {
            ctl_err(
                "connect",
                addr,
                last.unwrap_or_else(|| io::Error::other("no address")),
            )
        })?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(t))
            .map_err(|e| ctl_err("connect", addr, e))?;
        s.set_write_timeout(Some(t))
            .map_err(|e| ctl_err("connect", addr, e))?;
        proto::write_frame(
            &mut s,
            &Request::Hello {
                version: proto::VERSION,
            },
        )
        .map_err(|e| ctl_err("hello", addr, e))?;
        match proto::read_frame::<Response>(&mut s).map_err(|e| ctl_err("hello", addr, e))? {
            Some(Response::Hello {
                instance,
                worker_address,
                data_path,
                pid,
                ..
            }) => Ok((
                s,
                Hello {
                    instance,
                    worker_address,
                    data_path,
                    pid,
                },
            )),
            Some(Response::Error(m)) => Err(Error::connector(KIND, "hello", false, m)),
            other => Err(Error::connector(
                KIND,
                "hello",
                false,
                format!("unexpected answer {other:?}"),
            )),
        }
    }

    /// The cached peer for `addr`, created (hello + endpoint) on first use.
    fn peer(&self, addr: &str) -> Result<Arc<Peer>> {
        if let Some(p) = self.inner.peers.lock().get(addr) {
            return Ok(p.clone());
        }
        let (s, hello) = self.open(addr)?;
        let Hello {
            instance,
            worker_address,
            data_path: hint,
            pid,
        } = hello;
        let path = match self.inner.cfg.data_path {
            DataPath::Auto if hint == DataPath::Stream || tcp_only(&self.inner.cfg) => {
                DataPath::Stream
            }
            DataPath::Auto => DataPath::Rma,
            p => p,
        };
        let ep = if path == DataPath::Rma {
            let want = !shm_only(&self.inner.cfg);
            Some(self.inner.worker.lock().connect(&worker_address, want)?)
        } else {
            None
        };
        let peer = Arc::new(Peer {
            addr: addr.to_string(),
            instance,
            pid,
            path,
            ep,
            watch: s,
            idle: Mutex::new(Vec::new()),
            quarantine: Mutex::new(Vec::new()),
            segments: Mutex::new(HashMap::new()),
        });
        let mut peers = self.inner.peers.lock();
        Ok(peers.entry(addr.to_string()).or_insert(peer).clone())
    }

    /// Forget a peer (stale instance, failed endpoint, dead connections).
    fn invalidate(&self, peer: &Arc<Peer>) {
        let mut peers = self.inner.peers.lock();
        if peers.get(&peer.addr).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peers.remove(&peer.addr);
        }
    }

    /// The peer for a key, refreshed once if the key is from a newer instance
    /// or the cached server died. `None`: the key's server instance is gone
    /// (its objects with it).
    fn peer_for(&self, k: &UcxKey) -> Result<Option<Arc<Peer>>> {
        let p = self.peer(&k.server)?;
        if p.instance == k.instance && p.alive() {
            return Ok(Some(p));
        }
        // Our cached view may be the stale one: ask again.
        self.invalidate(&p);
        let p = self.peer(&k.server)?;
        Ok((p.instance == k.instance).then_some(p))
    }

    /// Run `f` on a control connection of `peer`; a failure on a reused
    /// (possibly stale) connection is retried once on a fresh one.
    fn with_conn<T>(
        &self,
        peer: &Arc<Peer>,
        op: &'static str,
        mut f: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> Result<Ctl<T>> {
        let reused = peer.idle.lock().pop();
        if let Some(mut s) = reused {
            if let Ok(v) = f(&mut s) {
                peer.idle.lock().push(s);
                return Ok(Ctl::Done(v));
            }
        }
        let (mut s, Hello { instance, .. }) = self.open(&peer.addr)?;
        if instance != peer.instance {
            self.invalidate(peer);
            return Ok(Ctl::Stale);
        }
        let v = f(&mut s).map_err(|e| ctl_err(op, &peer.addr, e))?;
        peer.idle.lock().push(s);
        Ok(Ctl::Done(v))
    }

    /// One request/response exchange (with optional raw payload after the request).
    fn call(
        &self,
        peer: &Arc<Peer>,
        op: &'static str,
        req: &Request,
        body: Option<&Payload>,
    ) -> Result<Ctl<Response>> {
        self.with_conn(peer, op, |s| {
            send_request(s, req, body)?;
            proto::read_frame::<Response>(s)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
        })
    }

    fn put_on(&self, peer: &Arc<Peer>, data: &[Payload]) -> Result<Ctl<Vec<Key>>> {
        let window = self.inner.cfg.max_in_flight.max(1);
        let r = self.with_conn(peer, "put", |s| {
            let mut out = Vec::with_capacity(data.len());
            for chunk in data.chunks(window) {
                for p in chunk {
                    send_request(
                        s,
                        &Request::Put {
                            len: p.len() as u64,
                        },
                        Some(p),
                    )?;
                }
                for _ in chunk {
                    out.push(
                        proto::read_frame::<Response>(s)?.ok_or(io::ErrorKind::UnexpectedEof)?,
                    );
                }
            }
            Ok(out)
        })?;
        let resps = match r {
            Ctl::Done(v) => v,
            Ctl::Stale => return Ok(Ctl::Stale),
        };
        let mut keys = Vec::with_capacity(resps.len());
        let mut first_err = None;
        for resp in resps {
            match resp {
                Response::Put(loc) => keys.push(Key::encode(&UcxKey {
                    server: peer.addr.clone(),
                    instance: peer.instance,
                    seg: loc.seg,
                    offset: loc.offset,
                    len: loc.len,
                    id: loc.id,
                })),
                other => {
                    first_err.get_or_insert(put_error(&peer.addr, other));
                }
            }
        }
        if let Some(e) = first_err {
            // Do not leave half a batch behind.
            for k in &keys {
                let _ = self.evict(k);
            }
            return Err(e);
        }
        Ok(Ctl::Done(keys))
    }

    /// Large puts on the RMA data path: reserve slots (pipelined, on one control
    /// connection), write the payloads with one-sided puts straight from the
    /// caller's `Bytes` (no copy), flush the endpoint (remote completion), then
    /// commit. Other readers see the object only after the commit.
    fn put_rma(&self, peer: &Arc<Peer>, data: &[&Payload]) -> Result<Ctl<Vec<Key>>> {
        let reused = peer.idle.lock().pop();
        let mut s = match reused {
            Some(s) => s,
            None => {
                let (s, Hello { instance, .. }) = self.open(&peer.addr)?;
                if instance != peer.instance {
                    self.invalidate(peer);
                    return Ok(Ctl::Stale);
                }
                s
            }
        };
        let resps = (|| -> io::Result<Vec<Response>> {
            for p in data {
                proto::write_frame(
                    &mut s,
                    &Request::Reserve {
                        len: p.len() as u64,
                        phase: proto::payload_phase(p) as u16,
                    },
                )?;
            }
            let mut v = Vec::with_capacity(data.len());
            for _ in data {
                v.push(proto::read_frame::<Response>(&mut s)?.ok_or(io::ErrorKind::UnexpectedEof)?);
            }
            Ok(v)
        })()
        .map_err(|e| ctl_err("put", &peer.addr, e))?;
        let mut locs = Vec::with_capacity(resps.len());
        for r in resps {
            match r {
                Response::Put(loc) => locs.push(loc),
                // Dropping `s` releases the reservations made so far (nothing was written).
                other => return Err(put_error(&peer.addr, other)),
            }
        }
        let written = self.write_reserved(peer, data, &locs);
        if let Err(e) = written {
            // UCX may still write into the reserved slots: keep them reserved.
            peer.quarantine.lock().push(s);
            return Err(e);
        }
        let committed = (|| -> io::Result<()> {
            for loc in &locs {
                proto::write_frame(&mut s, &Request::Commit(*loc))?;
            }
            for _ in &locs {
                match proto::read_frame::<Response>(&mut s)? {
                    Some(Response::Ok) => {}
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("commit: {other:?}"),
                        ));
                    }
                }
            }
            Ok(())
        })();
        committed.map_err(|e| ctl_err("put", &peer.addr, e))?;
        peer.idle.lock().push(s);
        Ok(Ctl::Done(
            locs.iter()
                .map(|loc| {
                    Key::encode(&UcxKey {
                        server: peer.addr.clone(),
                        instance: peer.instance,
                        seg: loc.seg,
                        offset: loc.offset,
                        len: loc.len,
                        id: loc.id,
                    })
                })
                .collect(),
        ))
    }

    /// Post the one-sided puts of `data` into the reserved `locs`, wait, flush.
    fn write_reserved(&self, peer: &Arc<Peer>, data: &[&Payload], locs: &[Loc]) -> Result<()> {
        let ep = peer.ep.as_ref().expect("rma peers have an endpoint");
        let mut segs = Vec::with_capacity(locs.len());
        for loc in locs {
            let seg = self.segment(peer, loc.seg)?.ok_or_else(|| {
                Error::connector(KIND, "put", true, format!("segment {} vanished", loc.seg))
            })?;
            segs.push(seg);
        }
        let mut reqs = Vec::new();
        {
            let g = self.inner.worker.lock();
            for ((p, loc), seg) in data.iter().zip(locs).zip(&segs) {
                let mut addr = seg.base + loc.offset + proto::HEADER as u64;
                for part in p.parts() {
                    reqs.push(ep.put(&g, &seg.rkey, addr, part.clone())?);
                    addr += part.len() as u64;
                }
            }
        }
        let refs: Vec<_> = reqs.iter().collect();
        self.wait_reqs(&refs, "put")?;
        for r in &reqs {
            r.take().expect("done")?;
        }
        let flush = ep.flush(&self.inner.worker.lock())?;
        self.wait_reqs(&[&flush], "put")?;
        flush.take().expect("done")?;
        Ok(())
    }

    fn segment(&self, peer: &Arc<Peer>, seg: u32) -> Result<Option<Arc<SegHandle>>> {
        if let Some(s) = peer.segments.lock().get(&seg) {
            return Ok(s.clone());
        }
        let info = match self.call(peer, "segment", &Request::Segment(seg), None)? {
            Ctl::Done(Response::Segment(info)) => info,
            Ctl::Done(other) => return Err(unexpected("segment", other)),
            Ctl::Stale => return Ok(None),
        };
        if let Some(info) = &info {
            // Forget segments the server has unmapped: their remote keys keep
            // the old memory mapped here (shared-memory transports).
            peer.segments
                .lock()
                .retain(|id, _| info.live.binary_search(id).is_ok());
        }
        let handle = match (info, &peer.ep) {
            (Some(info), Some(ep)) => {
                let rkey = ep.unpack_rkey(&self.inner.worker.lock(), &info.rkey)?;
                Some(Arc::new(SegHandle {
                    base: info.base,
                    len: info.len,
                    rkey,
                }))
            }
            _ => None,
        };
        peer.segments.lock().insert(seg, handle.clone());
        Ok(handle)
    }

    /// One-sided gets of many objects of one or more peers, pipelined.
    fn get_rma(&self, items: &[(Arc<Peer>, UcxKey)]) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; items.len()];
        let window = self.inner.cfg.max_in_flight.max(1);
        let idx: Vec<usize> = (0..items.len()).collect();
        for chunk in idx.chunks(window) {
            // 1. Post the data gets.
            let mut posted = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let (peer, k) = &items[i];
                let Some(seg) = self.segment(peer, k.seg)? else {
                    continue;
                };
                let wire = proto::wire_len(k.len)
                    .filter(|w| k.offset.checked_add(*w).is_some_and(|e| e <= seg.len));
                let Some(wire) = wire else {
                    return Err(Error::InvalidKey {
                        connector: KIND.into(),
                        reason: format!(
                            "object range {}+{} outside segment {} of {} bytes",
                            k.offset, k.len, k.seg, seg.len
                        ),
                    });
                };
                // Large objects land at the page phase they have on the
                // server, so the copy's source and destination agree modulo
                // a page (see `proto::PHASED`).
                let phase = if wire >= proto::PHASED {
                    (seg.base + k.offset) % proto::PAGE
                } else {
                    0
                };
                let buf = self.inner.pool.acquire_at(wire as usize, phase as usize)?;
                let req = self.post_get(peer, &seg, k.offset, buf)?;
                posted.push((i, seg, req));
            }
            let reqs: Vec<_> = posted.iter().map(|(_, _, r)| r).collect();
            self.wait_reqs(&reqs, "get")?;
            // 2. Check header and trailer; post the header re-reads.
            let mut checks = Vec::with_capacity(posted.len());
            for (i, seg, req) in posted {
                let (peer, k) = &items[i];
                let buf = match req.take().expect("done") {
                    Ok(b) => b,
                    Err(e) => {
                        self.after_failure(peer, e, k)?;
                        continue;
                    }
                };
                let s = buf.as_slice();
                let end = proto::HEADER + k.len as usize;
                if !proto::header_matches(s, k.id, k.len)
                    || !proto::trailer_matches(&s[end..], k.id)
                {
                    continue; // evicted (and maybe reused): None
                }
                let hb = self.inner.pool.acquire(proto::HEADER)?;
                let hreq = self.post_get(peer, &seg, k.offset, hb)?;
                checks.push((i, buf, hreq));
            }
            let reqs: Vec<_> = checks.iter().map(|(_, _, r)| r).collect();
            self.wait_reqs(&reqs, "get")?;
            // 3. Still the same object after the payload was read: hand it out.
            for (i, buf, hreq) in checks {
                let (peer, k) = &items[i];
                match hreq.take().expect("done") {
                    Ok(h) if proto::header_matches(h.as_slice(), k.id, k.len) => {
                        out[i] =
                            Some(buf.into_bytes(proto::HEADER..proto::HEADER + k.len as usize));
                    }
                    Ok(_) => {}
                    Err(e) => self.after_failure(peer, e, k)?,
                }
            }
        }
        Ok(out)
    }

    /// Post a one-sided read of `offset` in `seg` of `peer` into `buf`.
    fn post_get<B: crate::ucx::RmaTarget>(
        &self,
        peer: &Peer,
        seg: &SegHandle,
        offset: u64,
        buf: B,
    ) -> Result<RmaRequest<B>> {
        let ep = peer.ep.as_ref().expect("rma peers have an endpoint");
        ep.get(&self.inner.worker.lock(), &seg.rkey, seg.base + offset, buf)
    }

    /// Wait for `reqs`, progressing the worker; on timeout cancel them (their
    /// buffers are released only when UCX completes them, never before).
    fn wait_reqs<B>(&self, reqs: &[&RmaRequest<B>], operation: &'static str) -> Result<()> {
        let deadline = Instant::now() + self.timeout();
        let mut spins = 0u32;
        loop {
            {
                let g = self.inner.worker.lock();
                while g.progress() {}
                if reqs.iter().all(|r| r.is_done()) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    for r in reqs {
                        r.cancel(&g);
                    }
                    return Err(Error::Timeout {
                        connector: KIND.into(),
                        operation,
                        after: self.timeout(),
                    });
                }
            }
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            }
        }
    }

    /// A get failed in UCX: forget a failed endpoint; if the object is gone
    /// (segment unmapped, server restarted) it is a `None`, else the error.
    fn after_failure(&self, peer: &Arc<Peer>, e: Error, k: &UcxKey) -> Result<()> {
        if peer.ep.as_ref().is_some_and(|ep| ep.failure().is_some()) {
            self.invalidate(peer);
            return Err(e);
        }
        match self.call(peer, "exists", &Request::Exists(k.loc()), None) {
            Ok(Ctl::Done(Response::Bool(false))) | Ok(Ctl::Stale) => Ok(()),
            _ => Err(e),
        }
    }

    /// Owner-mode puts: each payload is copied once, part by part, from the
    /// caller's `Bytes` into a reserved slot of this process's registered arena.
    fn put_local(&self, o: &Owner, data: &[Payload]) -> Result<Vec<Key>> {
        let mut keys = Vec::with_capacity(data.len());
        for p in data {
            let loc = match o.local.put(p) {
                Ok(Ok(loc)) => loc,
                other => {
                    for k in &keys {
                        let _ = self.evict(k);
                    }
                    return Err(match other {
                        Err(e) => e,
                        Ok(Err(full)) => put_error(
                            &o.addr,
                            Response::Full {
                                size: full.size,
                                used: full.used,
                                limit: full.limit,
                            },
                        ),
                        Ok(Ok(_)) => unreachable!("handled above"),
                    });
                }
            };
            keys.push(Key::encode(&UcxKey {
                server: o.addr.clone(),
                instance: o.local.instance(),
                seg: loc.seg,
                offset: loc.offset,
                len: loc.len,
                id: loc.id,
            }));
        }
        Ok(keys)
    }

    fn get_stream(&self, peer: &Arc<Peer>, k: &UcxKey) -> Result<Option<Bytes>> {
        let pool = &self.inner.pool;
        let r = self.with_conn(peer, "get", |s| {
            proto::write_frame(s, &Request::Read(k.loc()))?;
            match proto::read_frame::<Response>(s)? {
                Some(Response::Read(Some(len))) if len == k.len => {
                    let mut buf = pool.acquire(len as usize).map_err(io::Error::other)?;
                    s.read_exact(buf.as_mut_slice())?;
                    Ok(Some(buf))
                }
                Some(Response::Read(None)) => Ok(None),
                other => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected answer {other:?}"),
                )),
            }
        })?;
        Ok(match r {
            Ctl::Done(Some(buf)) => Some(buf.into_bytes(0..k.len as usize)),
            _ => None,
        })
    }

    fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let mut out = vec![None; keys.len()];
        let mut rma = Vec::new();
        let mut rma_idx = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let k = self.decode(key)?;
            if let Some(local) = self.local_for(&k) {
                // This process's own arena: the slot itself, pinned, no copy.
                if k.instance == local.instance() {
                    out[i] = local.get(&k.loc());
                }
                continue;
            }
            let Some(peer) = self.peer_for(&k)? else {
                continue;
            };
            match peer.path {
                DataPath::Stream => out[i] = self.get_stream(&peer, &k)?,
                _ => {
                    rma.push((peer, k));
                    rma_idx.push(i);
                }
            }
        }
        if !rma.is_empty() {
            for (i, v) in rma_idx.into_iter().zip(self.get_rma(&rma)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

fn unexpected(op: &'static str, r: Response) -> Error {
    Error::connector(
        KIND,
        op,
        false,
        format!("unexpected answer from the object server: {r:?}"),
    )
}

fn put_error(addr: &str, r: Response) -> Error {
    match r {
        Response::Full { size, limit, .. } if size > limit => Error::TooLarge {
            connector: KIND.into(),
            size,
            limit,
        },
        Response::Full { size, used, limit } => Error::connector(
            KIND,
            "put",
            false,
            format!(
                "object server {addr} is full: {used} of {limit} bytes in use, the object needs {size} more \
                 (evict objects or raise --memory-limit)"
            ),
        ),
        Response::Error(m) => {
            Error::connector(KIND, "put", false, format!("object server {addr}: {m}"))
        }
        other => unexpected("put", other),
    }
}

fn send_request(s: &mut TcpStream, req: &Request, body: Option<&Payload>) -> io::Result<()> {
    proto::write_frame(s, req)?;
    if let Some(p) = body {
        for part in p.parts() {
            s.write_all(part)?;
        }
    }
    Ok(())
}

impl Connector for UcxConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::MINIMAL;
        c.cross_process = true;
        c.cross_node = true;
        // An owner's objects live in its own process.
        c.outlives_process = self.inner.owner.is_none();
        c.one_sided_get = match self.inner.cfg.data_path {
            DataPath::Rma => true,
            DataPath::Stream => false,
            DataPath::Auto => !tcp_only(&self.inner.cfg),
        };
        c.zero_copy_get = true;
        c
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let mut keys = self.put_batch(vec![data])?;
        Ok(keys.pop().expect("one key per payload"))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        self.check_open("put")?;
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(o) = &self.inner.owner {
            return self.put_local(o, &data);
        }
        for _ in 0..2 {
            let peer = self.home_peer()?;
            if !peer.alive() {
                self.invalidate(&peer); // restarted or gone: reconnect
                continue;
            }
            let threshold = self.inner.cfg.rma_put_threshold;
            let (big, small): (Vec<usize>, Vec<usize>) = (0..data.len())
                .partition(|&i| peer.path == DataPath::Rma && data[i].len() as u64 >= threshold);
            if big.is_empty() {
                match self.put_on(&peer, &data)? {
                    Ctl::Done(keys) => return Ok(keys),
                    Ctl::Stale => continue, // server restarted: put on the new instance
                }
            }
            let small_data: Vec<Payload> = small.iter().map(|&i| data[i].clone()).collect();
            let small_keys = match self.put_on(&peer, &small_data)? {
                Ctl::Done(k) => k,
                Ctl::Stale => continue,
            };
            let big_data: Vec<&Payload> = big.iter().map(|&i| &data[i]).collect();
            let big_keys = match self.put_rma(&peer, &big_data) {
                Ok(Ctl::Done(k)) => k,
                other => {
                    for k in &small_keys {
                        let _ = self.evict(k);
                    }
                    match other? {
                        Ctl::Stale => continue,
                        Ctl::Done(_) => unreachable!("handled above"),
                    }
                }
            };
            let mut keys: Vec<Option<Key>> = vec![None; data.len()];
            for (i, k) in small
                .into_iter()
                .zip(small_keys)
                .chain(big.into_iter().zip(big_keys))
            {
                keys[i] = Some(k);
            }
            return Ok(keys
                .into_iter()
                .map(|k| k.expect("every payload got a key"))
                .collect());
        }
        Err(Error::connector(
            KIND,
            "put",
            true,
            "object server keeps restarting",
        ))
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.check_open("get")?;
        Ok(self.get_many(std::slice::from_ref(key))?.pop().flatten())
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
        let Some(peer) = self.peer_for(&k)? else {
            return Ok(false);
        };
        match self.call(&peer, "exists", &Request::Exists(k.loc()), None)? {
            Ctl::Done(Response::Bool(b)) => Ok(b),
            Ctl::Done(other) => Err(unexpected("exists", other)),
            Ctl::Stale => Ok(false),
        }
    }

    fn evict(&self, key: &Key) -> Result<()> {
        self.check_open("evict")?;
        let k = self.decode(key)?;
        if let Some(local) = self.local_for(&k) {
            if k.instance == local.instance() {
                local.evict(&k.loc());
            }
            return Ok(());
        }
        let Some(peer) = self.peer_for(&k)? else {
            return Ok(());
        };
        match self.call(&peer, "evict", &Request::Evict(k.loc()), None)? {
            Ctl::Done(Response::Ok) | Ctl::Stale => Ok(()),
            Ctl::Done(other) => Err(unexpected("evict", other)),
        }
    }

    /// Drops connections, endpoints and cached rkeys. Objects stay on the
    /// server (it outlives this connector); `Bytes` already handed out stay valid.
    /// An owner stops its in-process server: its objects are gone for readers
    /// elsewhere (`Bytes` handed out here stay valid).
    fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        if let Some(o) = &self.inner.owner {
            let server = o.server.lock().take();
            if let Some(s) = server {
                s.shutdown();
            }
        }
        self.inner.peers.lock().clear();
        drop(self.inner.worker.lock()); // run the deferred endpoint closes now
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.inner.cfg)
    }
}

impl FromConfig for UcxConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        UcxConnector::new(config.options::<UcxConfig>()?)
    }
}

/// Register the `"ucx"` kind with `proxy_core`'s connector registry, so that
/// proxies and configurations naming it can be resolved in this process.
pub fn register() {
    proxy_core::registry::register_connector::<UcxConnector>();
}
