//! The object server: a registered arena served over a TCP control plane,
//! read by clients with one-sided UCX gets (or over the control connection on
//! the stream data path).
//!
//! Threads: one accept loop, one thread per client connection (control
//! operations, puts written straight from the socket into registered memory),
//! and one UCX progress thread that sleeps on the worker's event fd (needed by
//! transports whose RMA is emulated in software, such as TCP, and for wireup).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use proxy_core::{Error, Result};

use crate::arena::Arena;
use crate::proto::{self, DataPath, Request, Response};
use crate::ucx::{Context, Worker};

/// Server options.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (port 0 = any free port).
    pub listen: SocketAddr,
    /// Segment size in bytes.
    pub segment_size: u64,
    /// Total registered memory limit in bytes.
    pub memory_limit: u64,
    /// Write every page of new segments at once.
    pub prefault: bool,
    /// Bytes of empty segments kept mapped for reuse (besides one default
    /// segment); `u64::MAX`: as many as the memory limit allows.
    pub retain: u64,
    /// UCX transports (`UCX_TLS` syntax); `None` keeps the environment's choice.
    pub ucx_tls: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            segment_size: 256 << 20,
            memory_limit: 8 << 30,
            prefault: true,
            retain: u64::MAX,
            ucx_tls: None,
        }
    }
}

struct Shared {
    arena: Mutex<Arena>,
    worker_address: Vec<u8>,
    instance: u64,
    data_path: DataPath,
    stop: AtomicBool,
    /// Clones of the open client connections (shut down to stop their threads).
    conns: Mutex<HashMap<u64, TcpStream>>,
}

/// A running server; [`Server::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared(instance {:x})", self.instance)
    }
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
    Error::io(format!("proxystore-ucx-server: {context}"), e)
}

impl Server {
    /// Initialise UCX (reading `UCX_*` variables), map the first segment and
    /// start serving.
    pub fn start(opts: ServerOptions) -> Result<Server> {
        // Bind first: a second server on the same address (e.g. two processes
        // spawning one at once) fails fast, before it maps any memory.
        let listener = TcpListener::bind(opts.listen).map_err(|e| io_err("bind", e))?;
        let addr = listener.local_addr().map_err(|e| io_err("local_addr", e))?;
        let ctx = Context::rma(opts.ucx_tls.as_deref(), true)?;
        let worker = Worker::new(&ctx)?;
        let (worker_address, efd) = {
            let g = worker.lock();
            (g.address()?, g.event_fd()?)
        };
        let arena = Arena::new(
            &ctx,
            opts.segment_size,
            opts.memory_limit,
            opts.retain,
            opts.prefault,
        )?;
        let tcp_only = opts
            .ucx_tls
            .clone()
            .or_else(|| std::env::var("UCX_TLS").ok())
            .is_some_and(|t| proto::tls_is_tcp_only(&t));
        let shared = Arc::new(Shared {
            arena: Mutex::new(arena),
            worker_address,
            instance: random_u64(),
            data_path: if tcp_only {
                DataPath::Stream
            } else {
                DataPath::Auto
            },
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
        });
        let mut threads = Vec::new();
        let sh = shared.clone();
        threads.push(std::thread::spawn(move || progress_loop(&worker, efd, &sh)));
        let sh = shared.clone();
        threads.push(std::thread::spawn(move || accept_loop(&listener, &sh)));
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

    /// Whether a stop was requested (e.g. by a signal handler through [`Server::stop_flag`]).
    pub fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Ask the server to stop (async-signal-safe: an atomic store).
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Current arena statistics.
    pub fn stats(&self) -> proto::Stats {
        self.shared.arena.lock().stats()
    }

    /// This server instance's random id (keys carry it).
    pub fn instance(&self) -> u64 {
        self.shared.instance
    }

    /// Direct access to the arena from this process (in-process owner mode).
    pub(crate) fn local(&self) -> Local {
        Local(self.shared.clone())
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

fn poll_fd(fd: i32, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}

fn progress_loop(worker: &Worker, efd: i32, sh: &Shared) {
    while !sh.stop.load(Ordering::Relaxed) {
        let g = worker.lock();
        while g.progress() {}
        match g.arm() {
            Ok(true) => {
                drop(g);
                poll_fd(efd, 100);
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("proxystore-ucx-server: {e}");
                drop(g);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        poll_fd(listener.as_raw_fd(), 100);
        if let Err(e) = listener.set_nonblocking(true) {
            eprintln!("proxystore-ucx-server: {e}");
        }
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
                    let r = serve(stream, &sh);
                    sh.conns.lock().remove(&id);
                    if let Err(e) = r {
                        if !sh.stop.load(Ordering::Relaxed) {
                            eprintln!("proxystore-ucx-server: connection {peer:?}: {e}");
                        }
                    }
                }));
                handlers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("proxystore-ucx-server: accept: {e}"),
        }
    }
    for (_, c) in sh.conns.lock().drain() {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// Read and discard `n` bytes (the payload of a refused put).
fn drain(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied == n {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

fn serve(s: TcpStream, sh: &Shared) -> io::Result<()> {
    // Reservations of this connection not committed yet: released when it ends.
    let mut pending: Vec<proto::Loc> = Vec::new();
    let r = serve_requests(s, sh, &mut pending);
    if !pending.is_empty() {
        let mut arena = sh.arena.lock();
        for loc in &pending {
            arena.abort(loc);
        }
    }
    r
}

fn serve_requests(mut s: TcpStream, sh: &Shared, pending: &mut Vec<proto::Loc>) -> io::Result<()> {
    while let Some(req) = proto::read_frame::<Request>(&mut s)? {
        let resp = match req {
            Request::Hello { version } => {
                if version != proto::VERSION {
                    Response::Error(format!(
                        "protocol version {version} (server speaks {})",
                        proto::VERSION
                    ))
                } else {
                    Response::Hello {
                        version: proto::VERSION,
                        instance: sh.instance,
                        worker_address: sh.worker_address.clone(),
                        data_path: sh.data_path,
                        pid: std::process::id(),
                    }
                }
            }
            Request::Put { len } => {
                let reserved = sh.arena.lock().reserve(len, None);
                match reserved {
                    Err(e) => {
                        drain(&mut s, len)?;
                        Response::Error(e.to_string())
                    }
                    Ok(Err(full)) => {
                        drain(&mut s, len)?;
                        Response::Full {
                            size: full.size,
                            used: full.used,
                            limit: full.limit,
                        }
                    }
                    Ok(Ok(r)) => {
                        // SAFETY: the reservation is exclusively ours until commit/abort,
                        // and spans `len` payload bytes inside a registered segment.
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(r.payload, len as usize) };
                        if let Err(e) = s.read_exact(dst) {
                            sh.arena.lock().abort(&r.loc);
                            return Err(e);
                        }
                        sh.arena.lock().commit(&r.loc);
                        Response::Put(r.loc)
                    }
                }
            }
            Request::Reserve { len, phase } => {
                match sh.arena.lock().reserve(len, Some(phase.into())) {
                    Err(e) => Response::Error(e.to_string()),
                    Ok(Err(full)) => Response::Full {
                        size: full.size,
                        used: full.used,
                        limit: full.limit,
                    },
                    Ok(Ok(r)) => {
                        pending.push(r.loc);
                        Response::Put(r.loc)
                    }
                }
            }
            Request::Commit(loc) => match pending.iter().position(|l| *l == loc) {
                Some(i) => {
                    pending.swap_remove(i);
                    sh.arena.lock().commit(&loc);
                    Response::Ok
                }
                None => Response::Error(format!("no reservation {loc:?} on this connection")),
            },
            Request::Exists(loc) => Response::Bool(sh.arena.lock().exists(&loc)),
            Request::Evict(loc) => {
                sh.arena.lock().evict(&loc);
                Response::Ok
            }
            Request::Segment(seg) => Response::Segment(sh.arena.lock().segment(seg)),
            Request::Stats => Response::Stats(sh.arena.lock().stats()),
            Request::Read(loc) => {
                let ptr = sh.arena.lock().begin_read(&loc);
                match ptr {
                    None => Response::Read(None),
                    Some(p) => {
                        // SAFETY: the object is pinned (readers > 0) so its slot
                        // is neither freed nor rewritten until end_read.
                        let data = unsafe { std::slice::from_raw_parts(p, loc.len as usize) };
                        let r = proto::write_frame(&mut s, &Response::Read(Some(loc.len)))
                            .and_then(|()| s.write_all(data));
                        sh.arena.lock().end_read(&loc);
                        r?;
                        continue;
                    }
                }
            }
        };
        proto::write_frame(&mut s, &resp)?;
    }
    Ok(())
}

/// The arena of an in-process server, used directly by its owner: puts copy
/// the payload parts straight into a reserved slot of registered memory, gets
/// hand out the slot itself (pinned) as `Bytes`.
#[derive(Clone, Debug)]
pub(crate) struct Local(Arc<Shared>);

/// A pinned object of the local arena, handed out as `Bytes` without a copy.
struct Pinned {
    shared: Arc<Shared>,
    loc: proto::Loc,
    ptr: *const u8,
}

// SAFETY: `ptr` points into a registered segment kept alive by `shared` (the
// arena owns the segment); the slot is pinned (readers > 0), so it is neither
// freed nor rewritten while this exists, and it is only read.
unsafe impl Send for Pinned {}
// SAFETY: as for Send; shared reads of immutable bytes.
unsafe impl Sync for Pinned {}

impl AsRef<[u8]> for Pinned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the Send impl: `len` bytes at `ptr` stay valid and
        // unchanged while the pin exists.
        unsafe { std::slice::from_raw_parts(self.ptr, self.loc.len as usize) }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.shared.arena.lock().end_read(&self.loc);
    }
}

impl Local {
    /// The server instance.
    pub(crate) fn instance(&self) -> u64 {
        self.0.instance
    }

    /// Store `data`: one copy, from the caller's parts into the reserved slot.
    pub(crate) fn put(
        &self,
        data: &proxy_core::Payload,
    ) -> Result<std::result::Result<proto::Loc, crate::arena::Full>> {
        let len = data.len() as u64;
        let phase = proto::payload_phase(data);
        let r = match self.0.arena.lock().reserve(len, Some(phase))? {
            Ok(r) => r,
            Err(full) => return Ok(Err(full)),
        };
        let mut dst = r.payload;
        for part in data.parts() {
            // SAFETY: the reservation is exclusively ours until commit and spans
            // `len` payload bytes inside a registered segment; the parts add up
            // to `len` bytes, and caller memory never overlaps the arena's.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
                dst = dst.add(part.len());
            }
        }
        self.0.arena.lock().commit(&r.loc);
        Ok(Ok(r.loc))
    }

    /// The object's bytes (the slot itself, pinned until the `Bytes` is dropped).
    pub(crate) fn get(&self, loc: &proto::Loc) -> Option<bytes::Bytes> {
        let ptr = self.0.arena.lock().begin_read(loc)?;
        Some(bytes::Bytes::from_owner(Pinned {
            shared: self.0.clone(),
            loc: *loc,
            ptr,
        }))
    }

    /// Arena statistics.
    pub(crate) fn stats(&self) -> proto::Stats {
        self.0.arena.lock().stats()
    }

    /// Whether the object is stored.
    pub(crate) fn exists(&self, loc: &proto::Loc) -> bool {
        self.0.arena.lock().exists(loc)
    }

    /// Remove the object (freed when the last pinned `Bytes` is dropped).
    pub(crate) fn evict(&self, loc: &proto::Loc) {
        self.0.arena.lock().evict(loc);
    }
}
