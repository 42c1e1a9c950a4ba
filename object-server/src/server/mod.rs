//! The object server: a registered arena served over a TCP control plane,
//! read by clients with one-sided gets over any of the server's transports
//! (or over the control connection on the stream data path).
//!
//! Threads: one accept loop, one thread per client connection (control
//! requests, and the bytes of stream-path puts and reads), and one progress
//! thread per transport. One-sided gets and puts never involve a server
//! thread.

mod conn;
mod local;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proxy_core::{Error, Result};

use crate::arena::Arena;
use crate::auth::Secret;
use crate::proto::{DataPath, Stats};
use crate::transport::ServerTransport;

pub(crate) use local::Local;

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
    /// The job's secret: every request of a connection whose hello did not
    /// carry it is refused as unauthorized. `None`: anyone may connect.
    pub secret: Option<Secret>,
    /// Stop after this long with no object stored and no client connected
    /// (servers spawned on demand use it).
    pub idle_exit: Option<Duration>,
    /// Segments are shared-memory files that readers on this node map and
    /// read in place, with no copy (see the crate README); `false` keeps
    /// them private (every get copies, over the reader's transport).
    pub zero_copy: bool,
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
            idle_exit: None,
            zero_copy: true,
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
    conns: Mutex<HashMap<u64, TcpStream>>,
}

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
        s
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

/// A running server; [`Server::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    RandomState::new().hash_one((t, std::process::id()))
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
            instance: random_u64(),
            secret: opts.secret.clone(),
            host_id: crate::proto::host_id(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
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
            accept_loop(&listener, &sh, idle_exit);
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
            let _ = c.shutdown(std::net::Shutdown::Both);
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

/// Wait up to `timeout_ms` for `fd` to become readable.
pub(crate) fn poll_fd(fd: i32, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>, idle_exit: Option<Duration>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    let mut idle_since = Instant::now();
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("object server: {e}");
    }
    while !sh.stop.load(Ordering::Relaxed) {
        poll_fd(listener.as_raw_fd(), 100);
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let id = next_id;
                next_id += 1;
                if let Ok(c) = stream.try_clone() {
                    sh.conns.lock().insert(id, c);
                }
                let sh = sh.clone();
                handlers.push(std::thread::spawn(move || {
                    let peer = stream.peer_addr().ok();
                    let r = conn::serve(stream, &sh);
                    sh.conns.lock().remove(&id);
                    if let Err(e) = r {
                        if !sh.stop.load(Ordering::Relaxed) {
                            eprintln!("object server: connection {peer:?}: {e}");
                        }
                    }
                }));
                handlers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("object server: accept: {e}"),
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
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    for h in handlers {
        let _ = h.join();
    }
}
