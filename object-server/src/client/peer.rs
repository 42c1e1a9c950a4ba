//! Peers: the servers a client talks to, their control connections, their
//! endpoints on the client's transport, and their segments' descriptors.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::stream::Conn;
use parking_lot::Mutex;
use proxy_core::{Error, Payload, Result};

use super::ObjectClient;
use super::options::TransportConfig;
use crate::proto::{self, DataPath, Request, Response};
use crate::transport::ClientTransport;

/// A segment's descriptor, unpacked for this client's endpoint.
pub(crate) struct SegHandle<T: ClientTransport> {
    pub(crate) base: u64,
    pub(crate) len: u64,
    pub(crate) remote: T::Remote,
    /// The packed descriptor (a write handle with the same bytes as a read
    /// handle is the same handle: one unpacked key, one mapping).
    descriptor: Vec<u8>,
}

pub(crate) struct Peer<T: ClientTransport> {
    pub(crate) addr: String,
    pub(crate) instance: u64,
    pub(crate) pid: u32,
    pub(crate) path: DataPath,
    pub(crate) ep: Option<T::Endpoint>,
    /// The hello connection, never used for requests: the kernel closes it
    /// when the server process dies, which a one-byte `MSG_PEEK` sees. This
    /// is how a get notices a dead server whose memory is still mapped here
    /// (shared-memory transports keep the mapping alive).
    watch: Conn,
    pub(crate) idle: Mutex<Vec<Conn>>,
    /// Connections holding reservations whose one-sided puts failed or timed
    /// out: the fabric may still write into those slots, so they must not be
    /// released (closing the connection would) while this process lives.
    pub(crate) quarantine: Mutex<Vec<Conn>>,
    /// Read-only descriptors (`None`: the segment is gone).
    segments: Mutex<HashMap<u32, Option<Arc<SegHandle<T>>>>>,
    /// Read-write descriptors, granted for reservations of this client.
    write_segments: Mutex<HashMap<u32, Arc<SegHandle<T>>>>,
    /// Same-node reads in place (`None`: the server is elsewhere, or zero
    /// copy is off).
    pub(crate) mapped: Option<super::mapped::MappedPeer>,
}

impl<T: ClientTransport> Peer<T> {
    /// Whether the server process still holds its end of the watch connection.
    pub(crate) fn alive(&self) -> bool {
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

    pub(crate) fn endpoint(&self) -> &T::Endpoint {
        self.ep.as_ref().expect("rma peers have an endpoint")
    }
}

/// What a server said at hello.
pub(crate) struct Hello {
    pub(crate) instance: u64,
    address: Vec<u8>,
    data_path: DataPath,
    pid: u32,
    host_id: String,
}

/// Outcome of a control exchange on a connection.
pub(crate) enum Ctl<T> {
    Done(T),
    /// The server answered hello with another instance: our peer is stale.
    Stale,
}

/// A control-plane failure: which server, and the I/O error as the source.
#[derive(Debug)]
pub struct ControlError {
    /// `host:port` of the server.
    pub server: String,
    /// What failed.
    pub source: io::Error,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object server {}: {}", self.server, self.source)
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A control-plane I/O failure of `op` on server `addr`: a read or write
/// that ran into the connection's timeout (`after`) is [`Error::Timeout`],
/// anything else a temporary connector error naming the server.
pub(crate) fn ctl_err(
    kind: &str,
    op: &'static str,
    addr: &str,
    after: std::time::Duration,
    e: io::Error,
) -> Error {
    if is_timeout(&e) {
        return Error::Timeout {
            connector: kind.into(),
            operation: op,
            after,
        };
    }
    let source = ControlError {
        server: addr.to_string(),
        source: e,
    };
    Error::temporary(kind, op, source)
}

/// Whether `e` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` report
/// `EAGAIN`).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(crate) fn unexpected(kind: &str, op: &'static str, r: Response) -> Error {
    match r {
        Response::Unauthorized(m) => Error::permanent(kind, op, m),
        r => Error::permanent(
            kind,
            op,
            format!("unexpected answer from the object server: {r:?}"),
        ),
    }
}

pub(crate) fn send_request(s: &mut Conn, req: &Request, body: Option<&Payload>) -> io::Result<()> {
    proto::write_frame(s, req)?;
    if let Some(p) = body {
        p.write_all_to(s)?;
    }
    Ok(())
}

impl<T: ClientTransport> ObjectClient<T> {
    /// The peer of the configured server; with `spawn`, a server is started
    /// on this node first if none answers there.
    pub(crate) fn home_peer(&self) -> Result<Arc<Peer<T>>> {
        let c = self.inner.cfg.client();
        match self.peer(&c.server) {
            Err(e) if c.spawn && !crate::spawn::answers(&c.server) => {
                let mut args = T::server_args(&self.inner.cfg);
                if c.spawn_idle_exit_s > 0 {
                    args.extend(["--idle-exit".to_string(), c.spawn_idle_exit_s.to_string()]);
                }
                args.extend(c.spawn_args.iter().cloned());
                let secret = self.inner.secret.as_ref();
                crate::spawn::spawn_server(&T::SERVER, &c.server, &args, secret, self.timeout())
                    .map_err(|s| Error::permanent(T::NAME, "spawn", format!("{s} (first: {e})")))?;
                self.peer(&c.server)
            }
            r => r,
        }
    }

    /// Open a control connection and say hello.
    pub(crate) fn open(&self, addr: &str) -> Result<(Conn, Hello)> {
        let t = self.timeout();
        let err = |op, e| ctl_err(T::NAME, op, addr, t, e);
        let mut last = None;
        let addrs =
            std::net::ToSocketAddrs::to_socket_addrs(addr).map_err(|e| err("connect", e))?;
        let mut stream = None;
        for a in addrs {
            // A server on this node: its Unix-domain socket, if it has one.
            if let Some(u) = crate::stream::connect_local(&a) {
                stream = Some(Conn::Unix(u));
                break;
            }
            match std::net::TcpStream::connect_timeout(&a, t) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(Conn::Tcp(s));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut s = stream.ok_or_else(|| {
            err(
                "connect",
                last.unwrap_or_else(|| io::Error::other("no address")),
            )
        })?;
        s.set_read_timeout(Some(t)).map_err(|e| err("connect", e))?;
        s.set_write_timeout(Some(t))
            .map_err(|e| err("connect", e))?;
        let hello = Request::Hello {
            version: proto::VERSION,
            transport: T::NAME.to_string(),
            secret: self.inner.secret.as_ref().map(|s| s.expose().to_vec()),
        };
        proto::write_frame(&mut s, &hello).map_err(|e| err("hello", e))?;
        match proto::read_frame::<Response>(&mut s).map_err(|e| err("hello", e))? {
            Some(Response::Hello {
                instance,
                address,
                data_path,
                pid,
                host_id,
                ..
            }) => Ok((
                s,
                Hello {
                    instance,
                    address,
                    data_path,
                    pid,
                    host_id,
                },
            )),
            Some(Response::Unauthorized(m)) => Err(Error::permanent(
                T::NAME,
                "hello",
                format!("object server {addr}: {m}"),
            )),
            Some(Response::Error(m)) => Err(Error::permanent(
                T::NAME,
                "hello",
                format!("object server {addr}: {m}"),
            )),
            other => Err(Error::permanent(
                T::NAME,
                "hello",
                format!("object server {addr}: unexpected answer {other:?}"),
            )),
        }
    }

    /// The cached peer for `addr`, created (hello + endpoint) on first use.
    pub(crate) fn peer(&self, addr: &str) -> Result<Arc<Peer<T>>> {
        if let Some(p) = self.inner.peers.lock().get(addr) {
            return Ok(p.clone());
        }
        let (s, hello) = self.open(addr)?;
        let Hello {
            instance,
            address,
            data_path: hint,
            pid,
            host_id,
        } = hello;
        // Same host id: the server runs on this node's kernel, in our PID
        // and IPC namespaces, so its segment files may be opened and its
        // System V segments attached here (checked per segment).
        let mapped = (self.inner.cfg.client().zero_copy
            && !host_id.is_empty()
            && host_id == *super::mapped::HOST_ID)
            .then(super::mapped::MappedPeer::default);
        let path = match self.inner.cfg.client().data_path {
            DataPath::Auto if hint == DataPath::Stream || self.inner.transport.prefers_stream() => {
                DataPath::Stream
            }
            DataPath::Auto => DataPath::Rma,
            p => p,
        };
        let ep = if path == DataPath::Rma {
            Some(self.inner.transport.connect(&address)?)
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
            write_segments: Mutex::new(HashMap::new()),
            mapped,
        });
        let mut peers = self.inner.peers.lock();
        Ok(peers.entry(addr.to_string()).or_insert(peer).clone())
    }

    /// Forget a peer (stale instance, failed endpoint, dead connections).
    pub(crate) fn invalidate(&self, peer: &Arc<Peer<T>>) {
        let mut peers = self.inner.peers.lock();
        if peers.get(&peer.addr).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peers.remove(&peer.addr);
        }
    }

    /// The peer for a key's server and instance, refreshed once if the key is
    /// from a newer instance or the cached server died. `None`: the key's
    /// server instance is gone (its objects with it).
    pub(crate) fn peer_for(&self, server: &str, instance: u64) -> Result<Option<Arc<Peer<T>>>> {
        let p = self.peer(server)?;
        if p.instance == instance && p.alive() {
            return Ok(Some(p));
        }
        // Our cached view may be the stale one: ask again.
        self.invalidate(&p);
        let p = self.peer(server)?;
        Ok((p.instance == instance).then_some(p))
    }

    /// A control connection of `peer`: an idle one, or a fresh one (`None`
    /// if the server restarted meanwhile).
    pub(crate) fn connection(&self, peer: &Arc<Peer<T>>) -> Result<Option<Conn>> {
        if let Some(s) = peer.idle.lock().pop() {
            return Ok(Some(s));
        }
        self.fresh_connection(peer)
    }

    pub(crate) fn fresh_connection(&self, peer: &Arc<Peer<T>>) -> Result<Option<Conn>> {
        let (s, Hello { instance, .. }) = self.open(&peer.addr)?;
        if instance != peer.instance {
            self.invalidate(peer);
            return Ok(None);
        }
        Ok(Some(s))
    }

    /// Run `f` on a control connection of `peer`; a failure on a reused
    /// (possibly stale) connection is retried once on a fresh one.
    pub(crate) fn with_conn<R>(
        &self,
        peer: &Arc<Peer<T>>,
        op: &'static str,
        mut f: impl FnMut(&mut Conn) -> io::Result<R>,
    ) -> Result<Ctl<R>> {
        let t = self.timeout();
        let reused = peer.idle.lock().pop();
        if let Some(mut s) = reused {
            match f(&mut s) {
                Ok(v) => {
                    peer.idle.lock().push(s);
                    return Ok(Ctl::Done(v));
                }
                // The server did not answer within the timeout: say so now,
                // rather than wait as long again on a fresh connection.
                Err(e) if is_timeout(&e) => return Err(ctl_err(T::NAME, op, &peer.addr, t, e)),
                Err(_) => {}
            }
        }
        let Some(mut s) = self.fresh_connection(peer)? else {
            return Ok(Ctl::Stale);
        };
        let v = f(&mut s).map_err(|e| ctl_err(T::NAME, op, &peer.addr, t, e))?;
        peer.idle.lock().push(s);
        Ok(Ctl::Done(v))
    }

    /// One request/response exchange (with optional raw payload after the request).
    pub(crate) fn call(
        &self,
        peer: &Arc<Peer<T>>,
        op: &'static str,
        req: &Request,
        body: Option<&Payload>,
    ) -> Result<Ctl<Response>> {
        self.with_conn(peer, op, |s| {
            send_request(s, req, body)?;
            proto::read_frame::<Response>(s)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
        })
    }

    /// The read-only descriptor of segment `seg` of `peer` (cached).
    pub(crate) fn segment(
        &self,
        peer: &Arc<Peer<T>>,
        seg: u32,
    ) -> Result<Option<Arc<SegHandle<T>>>> {
        if let Some(s) = peer.segments.lock().get(&seg) {
            return Ok(s.clone());
        }
        let req = Request::Segment { seg, write: false };
        let info = match self.call(peer, "segment", &req, None)? {
            Ctl::Done(Response::Segment(info)) => info,
            Ctl::Done(other) => return Err(unexpected(T::NAME, "segment", other)),
            Ctl::Stale => return Ok(None),
        };
        if let Some(info) = &info {
            // Forget segments the server has unmapped: their remote keys keep
            // the old memory mapped here (shared-memory transports).
            peer.segments
                .lock()
                .retain(|id, _| info.live.binary_search(id).is_ok());
        }
        let handle = match info {
            Some(info) if peer.ep.is_some() => {
                let same = peer.write_segments.lock().get(&seg).cloned();
                Some(match same.filter(|h| h.descriptor == info.descriptor) {
                    Some(h) => h,
                    None => self.unpack(peer, info.base, info.len, info.descriptor)?,
                })
            }
            _ => None,
        };
        peer.segments.lock().insert(seg, handle.clone());
        Ok(handle)
    }

    fn unpack(
        &self,
        peer: &Peer<T>,
        base: u64,
        len: u64,
        descriptor: Vec<u8>,
    ) -> Result<Arc<SegHandle<T>>> {
        Ok(Arc::new(SegHandle {
            base,
            len,
            remote: self.inner.transport.unpack(peer.endpoint(), &descriptor)?,
            descriptor,
        }))
    }

    /// The read-write descriptor of segment `seg`, asked for on `s`, the
    /// connection holding a reservation in it (cached).
    pub(crate) fn write_segment(
        &self,
        peer: &Arc<Peer<T>>,
        s: &mut Conn,
        seg: u32,
    ) -> Result<Arc<SegHandle<T>>> {
        if let Some(h) = peer.write_segments.lock().get(&seg) {
            return Ok(h.clone());
        }
        let req = Request::Segment { seg, write: true };
        let err = |e| ctl_err(T::NAME, "put", &peer.addr, self.timeout(), e);
        proto::write_frame(s, &req).map_err(err)?;
        let info = match proto::read_frame::<Response>(s).map_err(err)? {
            Some(Response::Segment(Some(info))) => info,
            Some(Response::Segment(None)) => {
                return Err(Error::temporary(
                    T::NAME,
                    "put",
                    format!("segment {seg} vanished"),
                ));
            }
            Some(other) => return Err(unexpected(T::NAME, "put", other)),
            None => return Err(err(io::ErrorKind::UnexpectedEof.into())),
        };
        let same = peer.segments.lock().get(&seg).cloned().flatten();
        let h = match same.filter(|h| h.descriptor == info.descriptor) {
            Some(h) => h,
            None => self.unpack(peer, info.base, info.len, info.descriptor)?,
        };
        let mut w = peer.write_segments.lock();
        w.retain(|id, _| info.live.binary_search(id).is_ok());
        w.insert(seg, h.clone());
        Ok(h)
    }
}
