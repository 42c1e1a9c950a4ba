//! Gets: one-sided reads into the shared receive pool (pipelined, with the
//! header/trailer check, and the header re-read of reads slower than half
//! the server's reuse grace), the stream path, and the owner's own arena.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use proxy_core::mem::PoolBuf;
use proxy_core::{Error, Key, Result};

use super::ObjectClient;
use super::control::{Ctl, Peer, SegHandle};
use super::key::ObjectKey;
use super::mapped::Mapped;
use crate::config::TransportConfig;
use crate::layout;
use crate::proto::{self, DataPath, Request, Response};
use crate::transport::{ClientTransport, Operation};

/// Keys of one peer, with their places in the answer.
type PeerKeys<T> = (Arc<Peer<T>>, Vec<(usize, ObjectKey)>);

/// A posted read of an object's `[header | payload | trailer]`.
type Posted<T> = (
    Arc<SegHandle<T>>,
    <T as ClientTransport>::Op<PoolBuf<<T as ClientTransport>::Alloc>>,
);

/// Where one key's get goes.
enum Route<T: ClientTransport> {
    /// Answered already: the owner's own arena, or a server instance gone.
    Done(Option<Bytes>),
    /// A server on this node whose segments this process maps.
    Mapped(Arc<Peer<T>>, ObjectKey),
    /// A copy, over the fabric or the control connection.
    Copy(Arc<Peer<T>>, ObjectKey),
}

/// How long a single get's read may take before the server's liveness is
/// checked (when the get skipped the check: `peer_for_get`).
const LIVENESS_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// Whether a one-sided read posted at `posted_at`, complete now, needs no
/// header re-read: it completed within half the server's reuse grace, so
/// its header saw no eviction and no byte it read was another object's
/// (a slot is reused only `REUSE_GRACE` after its object was hidden:
/// `cooling.rs`).
fn fast(posted_at: Instant) -> bool {
    posted_at.elapsed() < crate::REUSE_GRACE / 2
}

/// Whether a read object's header and trailer name `k`.
fn intact(s: &[u8], k: &ObjectKey) -> bool {
    let end = layout::HEADER + k.len as usize;
    layout::header_matches(s, k.id, k.len) && layout::trailer_matches(&s[end..], k.id)
}

impl<T: ClientTransport> ObjectClient<T> {
    /// Where `key`'s get goes; `one`: a single get, which may skip the
    /// liveness check of the server (see `get_rma_one`).
    fn route(&self, key: &Key, one: bool) -> Result<Route<T>> {
        let k = self.decode(key)?;
        if let Some(local) = self.local_for(&k) {
            // This process's own arena: the slot itself, pinned, no copy.
            let same = k.instance == local.instance();
            return Ok(Route::Done(same.then(|| local.get(&k.loc())).flatten()));
        }
        let peer = match one {
            true => self.peer_for_get(&k.server, k.instance)?,
            false => self.peer_for(&k.server, k.instance)?,
        };
        let Some(peer) = peer else {
            return Ok(Route::Done(None));
        };
        if peer.mapped.as_ref().is_some_and(|m| m.usable()) {
            return Ok(Route::Mapped(peer, k));
        }
        Ok(Route::Copy(peer, k))
    }

    /// Whether a copy of `k` goes over the control connection: the peer's
    /// data path, or past what one read of the fabric takes.
    fn streams(&self, peer: &Peer<T>, k: &ObjectKey) -> Result<bool> {
        if peer.path == DataPath::Stream {
            return Ok(true);
        }
        let max_rma = self.fabric()?.transport.max_rma_len();
        Ok(layout::wire_len(k.len).is_none_or(|w| w > max_rma))
    }

    /// One key: [`get_many`](Self::get_many) without its batch bookkeeping.
    pub(crate) fn get_one(&self, key: &Key) -> Result<Option<Bytes>> {
        if self.inner.node.is_some() {
            // Through this node's server (see `node.rs`).
            return Ok(self.get_many(std::slice::from_ref(key))?.pop().flatten());
        }
        let (peer, k) = match self.route(key, true)? {
            Route::Done(b) => return Ok(b),
            Route::Mapped(peer, k) => match self.get_mapped(&peer, &[&k])?.pop() {
                Some(Mapped::Done(b)) => return Ok(b),
                _ => (peer, k),
            },
            Route::Copy(peer, k) => (peer, k),
        };
        if self.streams(&peer, &k)? {
            return self.get_stream(&peer, &k);
        }
        self.get_rma_one(&peer, &k)
    }

    pub(crate) fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        match self.inner.node.as_deref() {
            Some(node) => self.get_via_node(node, keys),
            None => self.get_direct(keys),
        }
    }

    /// Gets from the servers the keys name.
    pub(super) fn get_direct(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let mut out = vec![None; keys.len()];
        let mut rma = Vec::new();
        let mut rma_idx = Vec::new();
        let mut copy = Vec::new();
        let mut mapped: Vec<PeerKeys<T>> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match self.route(key, false)? {
                Route::Done(b) => out[i] = b,
                Route::Mapped(peer, k) => {
                    match mapped.iter_mut().find(|(p, _)| Arc::ptr_eq(p, &peer)) {
                        Some((_, v)) => v.push((i, k)),
                        None => mapped.push((peer, vec![(i, k)])),
                    }
                }
                Route::Copy(peer, k) => copy.push((i, peer, k)),
            }
        }
        for (peer, items) in mapped {
            let ks: Vec<&ObjectKey> = items.iter().map(|(_, k)| k).collect();
            let got = self.get_mapped(&peer, &ks)?;
            for ((i, k), g) in items.into_iter().zip(got) {
                match g {
                    Mapped::Done(b) => out[i] = b,
                    Mapped::Copy => copy.push((i, peer.clone(), k)),
                }
            }
        }
        for (i, peer, k) in copy {
            if self.streams(&peer, &k)? {
                out[i] = self.get_stream(&peer, &k)?;
            } else {
                rma.push((peer, k));
                rma_idx.push(i);
            }
        }
        if !rma.is_empty() {
            for (i, v) in rma_idx.into_iter().zip(self.get_rma(&rma)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Post the read of `k`'s `[header | payload | trailer]` into a pooled
    /// buffer (`None`: its segment is gone, or the server restarted).
    fn post_object(&self, peer: &Arc<Peer<T>>, k: &ObjectKey) -> Result<Option<Posted<T>>> {
        let Some(seg) = self.segment(peer, k.seg)? else {
            return Ok(None);
        };
        let wire = layout::wire_len(k.len)
            .filter(|w| k.offset.checked_add(*w).is_some_and(|e| e <= seg.len));
        let Some(wire) = wire else {
            return Err(Error::InvalidKey {
                connector: T::NAME.into(),
                reason: format!(
                    "object range {}+{} outside segment {} of {} bytes",
                    k.offset, k.len, k.seg, seg.len
                ),
            });
        };
        // Large objects land at the page phase they have on the server, so
        // the copy's source and destination agree modulo a page (see
        // `layout::PHASED`).
        let phase = if wire >= layout::PHASED {
            (seg.base + k.offset) % layout::PAGE
        } else {
            0
        };
        let buf = self
            .fabric()?
            .pool
            .acquire_at(wire as usize, phase as usize)?;
        let req = self.post_get(peer, &seg, k.offset, buf)?;
        Ok(Some((seg, req)))
    }

    /// Post the re-read of `k`'s header.
    fn post_header(
        &self,
        peer: &Arc<Peer<T>>,
        seg: &SegHandle<T>,
        k: &ObjectKey,
    ) -> Result<T::Op<PoolBuf<T::Alloc>>> {
        let hb = self.fabric()?.pool.acquire(layout::HEADER)?;
        self.post_get(peer, seg, k.offset, hb)
    }

    /// The outcome of a read of `k` (`None`: a failure that means the
    /// object is gone; the error otherwise).
    fn completed(
        &self,
        peer: &Arc<Peer<T>>,
        k: &ObjectKey,
        r: Result<PoolBuf<T::Alloc>>,
    ) -> Result<Option<PoolBuf<T::Alloc>>> {
        match r {
            Ok(b) => Ok(Some(b)),
            Err(e) => self.after_failure(peer, e, k).map(|()| None),
        }
    }

    /// The one-sided get of one object (as [`get_rma`](Self::get_rma),
    /// without its batch bookkeeping). Where the liveness check was skipped
    /// (`peer_for_get`), a read still in flight after [`LIVENESS_AFTER`]
    /// makes up for it: from a dead server it may never complete (libfabric
    /// 1.17's `shm` reports a failed read without its context), so the
    /// get then fails (or is `None` for a restarted server) at once rather
    /// than at the timeout.
    fn get_rma_one(&self, peer: &Arc<Peer<T>>, k: &ObjectKey) -> Result<Option<Bytes>> {
        let posted_at = Instant::now();
        let Some((seg, req)) = self.post_object(peer, k)? else {
            return Ok(None);
        };
        let transport = &self.fabric()?.transport;
        let checks_late = !transport.reads_outlive_server();
        if !(checks_late && transport.wait_within(&[&req], LIVENESS_AFTER)) {
            if checks_late && !peer.alive() {
                // The read keeps its buffer until the fabric is done with it.
                self.invalidate(peer);
                return match self.peer_for(&k.server, k.instance)? {
                    None => Ok(None),
                    Some(_) => Err(Error::temporary(
                        T::NAME,
                        "get",
                        "the server died during the get",
                    )),
                };
            }
            self.wait(&[&req], "get")?;
        }
        let fast = fast(posted_at);
        let Some(buf) = self.completed(peer, k, req.take().expect("done"))? else {
            return Ok(None);
        };
        if !intact(buf.as_slice(), k) {
            return Ok(None);
        }
        if !fast {
            let hreq = self.post_header(peer, &seg, k)?;
            self.wait(&[&hreq], "get")?;
            let h = self.completed(peer, k, hreq.take().expect("done"))?;
            if !h.is_some_and(|h| layout::header_matches(h.as_slice(), k.id, k.len)) {
                return Ok(None);
            }
        }
        Ok(Some(buf.into_bytes(
            layout::HEADER..layout::HEADER + k.len as usize,
        )))
    }

    /// One-sided gets of many objects of one or more peers, pipelined.
    fn get_rma(&self, items: &[(Arc<Peer<T>>, ObjectKey)]) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; items.len()];
        let window = self.inner.cfg.client().max_in_flight.max(1);
        let idx: Vec<usize> = (0..items.len()).collect();
        for chunk in idx.chunks(window) {
            // 1. Post the data gets.
            let posted_at = Instant::now();
            let mut posted = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let (peer, k) = &items[i];
                // None: segment gone (or server restarted).
                if let Some((seg, req)) = self.post_object(peer, k)? {
                    posted.push((i, seg, req));
                }
            }
            let reqs: Vec<_> = posted.iter().map(|(_, _, r)| r).collect();
            self.wait(&reqs, "get")?;
            let fast = fast(posted_at);
            // 2. Check header and trailer; post the header re-reads.
            let mut checks = Vec::with_capacity(posted.len());
            for (i, seg, req) in posted {
                let (peer, k) = &items[i];
                let Some(buf) = self.completed(peer, k, req.take().expect("done"))? else {
                    continue;
                };
                if !intact(buf.as_slice(), k) {
                    continue; // evicted (and maybe reused), or not committed: None
                }
                if fast {
                    out[i] = Some(buf.into_bytes(layout::HEADER..layout::HEADER + k.len as usize));
                    continue;
                }
                checks.push((i, buf, self.post_header(peer, &seg, k)?));
            }
            let reqs: Vec<_> = checks.iter().map(|(_, _, r)| r).collect();
            self.wait(&reqs, "get")?;
            // 3. Still the same object after the payload was read: hand it out.
            for (i, buf, hreq) in checks {
                let (peer, k) = &items[i];
                let h = self.completed(peer, k, hreq.take().expect("done"))?;
                if h.is_some_and(|h| layout::header_matches(h.as_slice(), k.id, k.len)) {
                    out[i] = Some(buf.into_bytes(layout::HEADER..layout::HEADER + k.len as usize));
                }
            }
        }
        Ok(out)
    }

    /// Post a one-sided read of `buf.len()` bytes at `offset` in `seg`.
    fn post_get(
        &self,
        peer: &Peer<T>,
        seg: &SegHandle<T>,
        offset: u64,
        buf: PoolBuf<T::Alloc>,
    ) -> Result<T::Op<PoolBuf<T::Alloc>>> {
        self.fabric()?
            .transport
            .get(self.endpoint(peer)?, &seg.remote, seg.base + offset, buf)
    }

    /// Wait for `ops` (bounded by the timeout; cancel-safe).
    pub(crate) fn wait<B: Send + 'static>(
        &self,
        ops: &[&T::Op<B>],
        op: &'static str,
    ) -> Result<()> {
        self.fabric()?.transport.wait(ops, op, self.timeout())
    }

    /// A get failed in the fabric: forget a failed endpoint; if the object is
    /// gone (segment unmapped, server restarted) it is a `None`, else the error.
    fn after_failure(&self, peer: &Arc<Peer<T>>, e: Error, k: &ObjectKey) -> Result<()> {
        let failed = match (peer.ep.get(), self.inner.fabric.get()) {
            (Some(ep), Some(f)) => f.transport.failed(ep),
            _ => false,
        };
        if failed {
            self.invalidate(peer);
            // A server restarted meanwhile: the key's objects are gone.
            return match self.peer_for(&k.server, k.instance) {
                Ok(None) => Ok(()),
                _ => Err(e),
            };
        }
        match self.call(peer, "exists", &Request::Exists(k.loc()), None) {
            Ok(Ctl::Done(Response::Bool(false))) | Ok(Ctl::Stale) => Ok(()),
            _ => Err(e),
        }
    }

    /// The server writes the bytes to the control connection; they land in
    /// a pooled buffer, handed out without a copy.
    fn get_stream(&self, peer: &Arc<Peer<T>>, k: &ObjectKey) -> Result<Option<Bytes>> {
        let pool = &self.fabric()?.pool;
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
}
