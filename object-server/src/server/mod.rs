//! The object server: a registered arena served over a TCP control plane,
//! read by clients with one-sided gets over any of the server's transports
//! (or over the control connection on the stream data path).
//!
//! Threads: one accept loop, one thread per client connection (control
//! requests, and the bytes of stream-path puts and reads), and one progress
//! thread per transport. One-sided gets and puts never involve a server
//! thread. Connections that have not said an accepted hello are bounded in
//! number ([`MAX_GREETING`]: a new one closes the oldest) and in time
//! ([`HELLO_TIMEOUT`]), so a client without the secret cannot make the
//! server hold threads.

mod conn;
mod local;
mod relay;
mod replica;
mod upstream;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proxy_core::{Error, Result};

use crate::arena::Arena;
use crate::auth::Secret;
use crate::proto::{DataPath, Stats};
use crate::stream::Conn;
use crate::transport::ServerTransport;

pub(crate) use local::Local;
pub use relay::RelayOptions;

/// Options of a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Control-plane address (port 0: any free port).
    pub listen: SocketAddr,
    /// Registered memory is mapped in segments of this size (objects larger
    /// than a segment get a segment of their own).
    pub segment_size: u64,
    /// Total registered memory; a put beyond it is refused.
    pub memory_limit: u64,
    /// Write every page of new segments up front (no page faults later).
    pub prefault: bool,
    /// Bytes of empty segments kept mapped (and registered, and faulted in)
    /// for reuse, besides one default-sized segment; beyond it they are
    /// unmapped (default: unlimited, up to the memory limit).
    pub retain: u64,
    /// The job's secret: every request of a connection that did not prove
    /// it holds it is refused as unauthorized. `None`: anyone may connect.
    pub secret: Option<Secret>,
    /// Other `host:port`s clients reach this server at (an SSH tunnel, a
    /// forwarded port, a NAT): a client proves the secret for the address it
    /// dialed, which the server accepts if the connection arrived there, if
    /// it is the advertised address, or if it is one of these (see
    /// [`crate::handshake`]).
    pub reachable_at: Vec<String>,
    /// Stop after this long with no object stored and no client connected
    /// (servers spawned on demand use it).
    pub idle_exit: Option<Duration>,
    /// Segments are shared-memory files that readers on this node map and
    /// read in place, with no copy (see the crate README); `false` keeps
    /// them private (every get copies, over the reader's transport).
    pub zero_copy: bool,
    /// Also listen on a Unix-domain socket for clients on this node (see
    /// [`crate::stream`]): the kernel tells who connected, and a process of
    /// this server's user needs no secret.
    pub unix_socket: bool,
    /// The directory of that socket (default: [`crate::stream::socket_dir`]).
    pub socket_dir: Option<PathBuf>,
    /// `host:port` other servers reach this one at (the relay names it to
    /// them). Default: the bound address, or this host's name with the bound
    /// port when listening on an unspecified address (`0.0.0.0`, `::`).
    pub advertise: Option<String>,
    /// Replicas and the relay (see the crate README, "One object, many nodes").
    pub relay: RelayOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            segment_size: 256 << 20,
            memory_limit: 8 << 30,
            prefault: true,
            retain: u64::MAX,
            secret: None,
            reachable_at: Vec::new(),
            idle_exit: None,
            zero_copy: true,
            unix_socket: true,
            socket_dir: None,
            advertise: None,
            relay: RelayOptions::default(),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) arena: Mutex<Arena>,
    pub(crate) transports: Arc<[Box<dyn ServerTransport>]>,
    pub(crate) instance: u64,
    pub(crate) secret: Option<Secret>,
    /// This process's [`proto::host_id`](crate::proto::host_id) (told at hello: same one, same node and namespaces).
    pub(crate) host_id: String,
    stop: AtomicBool,
    /// Clones of the open client connections (shut down to stop their threads).
    conns: Mutex<HashMap<u64, Conn>>,
    /// Connections without an accepted hello yet, oldest first (id, clone):
    /// at most [`MAX_GREETING`]; a new one beyond that closes the oldest.
    greeting: Mutex<VecDeque<(u64, Conn)>>,
    /// This process's user: a Unix-domain client of that user needs no secret.
    pub(crate) uid: u32,
    /// The bound control-plane address.
    pub(crate) listen: SocketAddr,
    /// Addresses a client may have dialed besides where its connection
    /// arrived: the advertised one and `reachable_at`, resolved at start.
    pub(crate) reachable: Vec<SocketAddr>,
    /// Replicas of other servers' objects, and the relay among node servers.
    pub(crate) relay: Arc<relay::Relay>,
}

/// Connections that have not said an accepted hello yet, at most: their
/// threads are bounded by this, whoever connects. A client says hello as
/// soon as it connects, so closing the oldest of them for a new one closes
/// an idle or slow one.
pub const MAX_GREETING: usize = 64;
/// How long a connection may take to say an accepted hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared(instance {:x})", self.instance)
    }
}

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        let mut s = {
            let mut a = self.arena.lock();
            a.reclaim();
            a.stats()
        };
        s.clients = self.conns.lock().len() as u64;
        self.relay.stats(&mut s);
        s
    }

    /// Connection `id` said an accepted hello (or closed): no longer counted
    /// among those greeting.
    pub(crate) fn greeted(&self, id: u64) {
        self.greeting.lock().retain(|(i, _)| *i != id);
    }

    /// Whether a client that connected on `conn` and says it dialed `dialed`
    /// reached this server there (see [`crate::handshake`]): where a TCP
    /// connection arrived, an advertised or declared address, or on the
    /// Unix-domain socket, this server's port on an address of this node.
    pub(crate) fn was_dialed(&self, dialed: &str, conn: &Conn) -> bool {
        use crate::handshake::addr_text;
        let Ok(d) = dialed.parse::<SocketAddr>() else {
            return false;
        };
        let d = addr_text(d);
        if self.reachable.iter().any(|a| addr_text(*a) == d) {
            return true;
        }
        match conn.local_tcp_addr() {
            Some(local) => addr_text(local) == d,
            None => {
                let Ok(d) = d.parse::<SocketAddr>() else {
                    return false;
                };
                d.port() == self.listen.port()
                    && (d.ip() == self.listen.ip()
                        || (self.listen.ip().is_unspecified()
                            && crate::stream::is_local_ip(d.ip())))
            }
        }
    }

    /// The transport named `name`: its index, address and data-path hint.
    pub(crate) fn transport(&self, name: &str) -> Option<(usize, &[u8], DataPath)> {
        self.transports
            .iter()
            .enumerate()
            .find(|(_, t)| t.name() == name)
            .map(|(i, t)| (i, t.address(), t.data_path_hint()))
    }
}

/// Statistics of the server at `addr` (any server binary: its control plane,
/// as a control-only client with `secret`).
pub fn remote_stats(addr: &str, secret: Option<Secret>, timeout: Duration) -> io::Result<Stats> {
    match upstream::Upstream::new(secret, timeout).call(addr, &crate::proto::Request::Stats)? {
        crate::proto::Response::Stats(s) => Ok(s),
        other => Err(io::Error::other(format!("unexpected answer: {other:?}"))),
    }
}

/// A running server; [`Server::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn io_err(context: &str, e: io::Error) -> Error {
    Error::io(format!("object server: {context}"), e)
}

impl Server {
    /// Map the first segment, register it with every one of `transports`
    /// (at least one, names distinct) and start serving.
    pub fn start(opts: ServerOptions, transports: Vec<Box<dyn ServerTransport>>) -> Result<Server> {
        if transports.is_empty() {
            return Err(Error::config("object-server", "no transport to serve"));
        }
        for (i, t) in transports.iter().enumerate() {
            if transports[..i].iter().any(|u| u.name() == t.name()) {
                return Err(Error::config(
                    "object-server",
                    format!("transport {} named twice", t.name()),
                ));
            }
        }
        // Bind first: a second server on the same address (e.g. two processes
        // spawning one at once) fails fast, before it maps any memory.
        let listener = TcpListener::bind(opts.listen).map_err(|e| io_err("bind", e))?;
        let addr = listener.local_addr().map_err(|e| io_err("local_addr", e))?;
        let unix = if opts.unix_socket {
            match bind_unix(opts.socket_dir.clone(), &addr) {
                Ok(u) => Some(u),
                Err(e) => {
                    eprintln!(
                        "object server: no Unix-domain socket (clients on this node use TCP): {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let advertise = match &opts.advertise {
            Some(a) => a.clone(),
            None if addr.ip().is_unspecified() => match crate::stream::hostname() {
                Some(h) => format!("{h}:{}", addr.port()),
                None => addr.to_string(),
            },
            None => addr.to_string(),
        };
        let mut reachable = Vec::new();
        for a in opts.reachable_at.iter().chain([&advertise]) {
            match std::net::ToSocketAddrs::to_socket_addrs(a.as_str()) {
                Ok(addrs) => reachable.extend(addrs),
                // The advertised name may not resolve here (it is for others).
                Err(_) if *a == advertise => {}
                Err(e) => {
                    return Err(Error::config(
                        "object-server",
                        format!("reachable-at address {a}: {e}"),
                    ));
                }
            }
        }
        let mut relay_opts = opts.relay.clone();
        if relay_opts.replica_limit == u64::MAX {
            relay_opts.replica_limit = opts.memory_limit / 2;
        }
        let relay = Arc::new(relay::Relay::new(
            relay_opts,
            advertise,
            opts.secret.clone(),
        ));
        let transports: Arc<[Box<dyn ServerTransport>]> = transports.into();
        let arena = Arena::new(
            transports.clone(),
            opts.segment_size,
            opts.memory_limit,
            opts.retain,
            opts.prefault,
            opts.zero_copy,
        )?;
        let shared = Arc::new(Shared {
            arena: Mutex::new(arena),
            transports,
            instance: crate::auth::random_u64(),
            greeting: Mutex::new(VecDeque::new()),
            // SAFETY: geteuid cannot fail.
            uid: unsafe { libc::geteuid() },
            listen: addr,
            reachable,
            secret: opts.secret.clone(),
            host_id: crate::proto::host_id(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            relay,
        });
        let mut threads = Vec::new();
        for i in 0..shared.transports.len() {
            let sh = shared.clone();
            threads.push(std::thread::spawn(move || {
                sh.transports[i].progress(&sh.stop);
            }));
        }
        let sh = shared.clone();
        let idle_exit = opts.idle_exit;
        threads.push(std::thread::spawn(move || {
            accept_loop(&listener, unix.as_ref(), &sh, idle_exit);
            if let Some(u) = unix {
                u.remove();
            }
        }));
        Ok(Server {
            addr,
            shared,
            threads,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server stopped by itself (idle exit).
    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The `host:port` other servers reach this one at.
    pub fn advertised(&self) -> &str {
        &self.shared.relay.advertise
    }

    /// This server instance's random id (keys carry it).
    pub fn instance(&self) -> u64 {
        self.shared.instance
    }

    /// Direct access to the arena from this process (in-process owner mode).
    pub(crate) fn local(&self) -> Local {
        Local::new(self.shared.clone())
    }

    /// Stop accepting, disconnect clients, stop progress, release everything.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for (_, c) in self.shared.conns.lock().drain() {
            c.shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Wait up to `timeout_ms` for any of `fds` to become readable.
fn poll_fds(fds: &[Option<i32>], timeout_ms: i32) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .flatten()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfds for the call.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
}

/// The server's Unix-domain socket, removed when the server stops (if the
/// file is still this socket).
struct UnixBound {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl UnixBound {
    fn remove(self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Listen on the Unix-domain socket of the server at `addr` in `dir`; a
/// socket file left by a server that is gone is replaced, a live one kept
/// (an error).
fn bind_unix(dir: Option<PathBuf>, addr: &SocketAddr) -> io::Result<UnixBound> {
    use std::os::unix::fs::MetadataExt;
    let dir = match dir {
        Some(d) => d,
        None => crate::stream::socket_dir()?,
    };
    let path = crate::stream::socket_path(&dir, addr);
    let listener = match UnixListener::bind(&path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is another live server's", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
            UnixListener::bind(&path)?
        }
        r => r?,
    };
    let ino = std::fs::symlink_metadata(&path)?.ino();
    Ok(UnixBound {
        listener,
        path,
        ino,
    })
}

fn accept_loop(
    listener: &TcpListener,
    unix: Option<&UnixBound>,
    sh: &Arc<Shared>,
    idle_exit: Option<Duration>,
) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    let mut idle_since = Instant::now();
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("object server: {e}");
    }
    if let Some(u) = unix {
        if let Err(e) = u.listener.set_nonblocking(true) {
            eprintln!("object server: {e}");
        }
    }
    while !sh.stop.load(Ordering::Relaxed) {
        poll_fds(
            &[
                Some(listener.as_raw_fd()),
                unix.map(|u| u.listener.as_raw_fd()),
            ],
            100,
        );
        loop {
            let accepted = match listener.accept() {
                Ok((s, _)) => Ok(Conn::Tcp(s)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match unix {
                    Some(u) => u.listener.accept().map(|(s, _)| Conn::Unix(s)),
                    None => Err(e),
                },
                Err(e) => Err(e),
            };
            let stream = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("object server: accept: {e}");
                    break;
                }
            };
            stream.prepare();
            let id = next_id;
            next_id += 1;
            if let Ok(c) = stream.try_clone() {
                sh.conns.lock().insert(id, c);
            }
            if let Ok(c) = stream.try_clone() {
                let mut g = sh.greeting.lock();
                g.push_back((id, c));
                if g.len() > MAX_GREETING {
                    if let Some((_, oldest)) = g.pop_front() {
                        oldest.shutdown();
                    }
                }
            }
            let sh = sh.clone();
            handlers.push(std::thread::spawn(move || {
                let peer = stream.peer_name();
                let r = conn::serve(stream, &sh, id);
                sh.conns.lock().remove(&id);
                sh.greeted(id);
                if let Err(e) = r {
                    if !sh.stop.load(Ordering::Relaxed) {
                        eprintln!("object server: connection {peer}: {e}");
                    }
                }
            }));
            handlers.retain(|h| !h.is_finished());
        }
        // Slots of evicted objects that readers' pin pages released.
        sh.arena.lock().reclaim();
        if let Some(limit) = idle_exit {
            let s = sh.stats();
            if s.objects > 0 || s.clients > 0 {
                idle_since = Instant::now();
            } else if idle_since.elapsed() >= limit {
                eprintln!(
                    "object server: no objects and no clients for {limit:?}: stopping (idle exit)"
                );
                sh.stop.store(true, Ordering::Relaxed);
            }
        }
    }
    for (_, c) in sh.conns.lock().drain() {
        c.shutdown();
    }
    for h in handlers {
        let _ = h.join();
    }
}
