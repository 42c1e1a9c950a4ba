//! Peers: how a client finds the servers it talks to (spawning one on
//! demand), opens and reuses their control connections, connects its
//! transport's endpoint, and unpacks their segments' descriptors.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use crate::stream::Conn;
use parking_lot::Mutex;
use proxy_core::{Error, Payload, Result};

use super::ObjectClient;
use super::control::{Ctl, Hello, Peer, SegHandle, ctl_err, is_timeout, send_request, unexpected};
use crate::config::TransportConfig;
use crate::proto::{self, DataPath, Request, Response};
use crate::transport::ClientTransport;

impl<T: ClientTransport> ObjectClient<T> {
    /// The peer of the configured server; with `spawn`, a server is started
    /// on this node first if none answers there.
    pub(crate) fn home_peer(&self) -> Result<Arc<Peer<T>>> {
        let c = self.inner.cfg.client();
        match self.peer(&c.server) {
            Err(e) if c.spawn && !crate::spawn::answers(&c.server) => {
                let mut args = self.inner.cfg.server_args();
                if c.spawn_idle_exit_s > 0 {
                    args.extend(["--idle-exit".to_string(), c.spawn_idle_exit_s.to_string()]);
                }
                args.extend(c.spawn_args.iter().cloned());
                let secret = self.inner.secret.as_ref();
                crate::spawn::spawn_server(
                    &<T::Config as TransportConfig>::SERVER,
                    &c.server,
                    &args,
                    secret,
                    self.timeout(),
                )
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
                stream = Some((Conn::Unix(u), a));
                break;
            }
            match std::net::TcpStream::connect_timeout(&a, t) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some((Conn::Tcp(s), a));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let (mut s, dialed) = stream.ok_or_else(|| {
            err(
                "connect",
                last.unwrap_or_else(|| io::Error::other("no address")),
            )
        })?;
        s.set_read_timeout(Some(t)).map_err(|e| err("connect", e))?;
        s.set_write_timeout(Some(t))
            .map_err(|e| err("connect", e))?;
        let secret = self.inner.secret.as_ref();
        match crate::handshake::greet(&mut s, T::NAME, secret, dialed)
            .map_err(|e| err("hello", e))?
        {
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
            // The connection closed before the answer (a server dying or
            // stopping as we connected): temporary, like any lost connection.
            None => Err(err("hello", io::ErrorKind::UnexpectedEof.into())),
            other => Err(Error::permanent(
                T::NAME,
                "hello",
                format!("object server {addr}: unexpected answer {other:?}"),
            )),
        }
    }

    /// The fabric endpoint of `peer` (an `Rma` peer), connected on first use.
    pub(crate) fn endpoint<'p>(&self, peer: &'p Peer<T>) -> Result<&'p T::Endpoint> {
        if let Some(ep) = peer.ep.get() {
            return Ok(ep);
        }
        let _connected_once = peer.ep_init.lock();
        if let Some(ep) = peer.ep.get() {
            return Ok(ep);
        }
        let ep = self
            .fabric()?
            .transport
            .connect(&peer.address, peer.same_host)?;
        Ok(peer.ep.get_or_init(|| ep))
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
        let same_host = !host_id.is_empty() && host_id == *super::mapped::HOST_ID;
        let mapped = (self.inner.cfg.client().zero_copy && same_host)
            .then(super::mapped::MappedPeer::default);
        let path = match self.inner.cfg.client().data_path {
            DataPath::Auto if hint == DataPath::Stream || T::prefers_stream(&self.inner.cfg) => {
                DataPath::Stream
            }
            DataPath::Auto => DataPath::Rma,
            p => p,
        };
        // A server elsewhere: connect now, so that an unreachable fabric is
        // told at first contact. A server on this node is read through its
        // mapped segments: the endpoint (and the fabric) wait for a get or
        // put that needs them.
        let ep = std::sync::OnceLock::new();
        if path == DataPath::Rma && mapped.is_none() {
            let _ = ep.set(self.fabric()?.transport.connect(&address, same_host)?);
        }
        let peer = Arc::new(Peer {
            addr: addr.to_string(),
            instance,
            pid,
            path,
            address,
            same_host,
            ep,
            ep_init: Mutex::new(()),
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
        self.peer_checked(server, instance, true)
    }

    /// [`peer_for`](Self::peer_for) for a single get: without the liveness
    /// check where only a one-sided read follows and such a read cannot
    /// return a dead server's bytes (`ClientTransport::reads_outlive_server`);
    /// the get checks after all if its read is slow (`get_rma_one`).
    pub(crate) fn peer_for_get(&self, server: &str, instance: u64) -> Result<Option<Arc<Peer<T>>>> {
        let fails_alone = self
            .inner
            .fabric
            .get()
            .is_some_and(|f| !f.transport.reads_outlive_server());
        self.peer_checked(server, instance, !fails_alone)
    }

    fn peer_checked(
        &self,
        server: &str,
        instance: u64,
        mut check: bool,
    ) -> Result<Option<Arc<Peer<T>>>> {
        let p = self.peer(server)?;
        // Mapped reads and the stream path always check.
        check |= p.path == DataPath::Stream || p.mapped.as_ref().is_some_and(|m| m.usable());
        if p.instance == instance && (!check || p.alive()) {
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
            Some(info) if peer.path == DataPath::Rma => {
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
            remote: self
                .fabric()?
                .transport
                .unpack(self.endpoint(peer)?, &descriptor)?,
            descriptor,
        }))
    }

    /// Segment `seg` as a writer gets it (read-write descriptor, shared
    /// memory), asked for on `s`, the connection holding a reservation in it.
    pub(crate) fn write_segment_info(
        &self,
        peer: &Arc<Peer<T>>,
        s: &mut Conn,
        seg: u32,
    ) -> Result<crate::proto::SegmentInfo> {
        let req = Request::Segment { seg, write: true };
        let err = |e| ctl_err(T::NAME, "put", &peer.addr, self.timeout(), e);
        proto::write_frame(s, &req).map_err(err)?;
        match proto::read_frame::<Response>(s).map_err(err)? {
            Some(Response::Segment(Some(info))) => Ok(info),
            Some(Response::Segment(None)) => Err(Error::temporary(
                T::NAME,
                "put",
                format!("segment {seg} vanished"),
            )),
            Some(other) => Err(unexpected(T::NAME, "put", other)),
            None => Err(err(io::ErrorKind::UnexpectedEof.into())),
        }
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
        let info = self.write_segment_info(peer, s, seg)?;
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
