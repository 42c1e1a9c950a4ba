//! Gets: one-sided reads into the shared receive pool (pipelined, with the
//! header/trailer/header check), the stream path, and the owner's own arena.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
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

impl<T: ClientTransport> ObjectClient<T> {
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
            let k = self.decode(key)?;
            if let Some(local) = self.local_for(&k) {
                // This process's own arena: the slot itself, pinned, no copy.
                if k.instance == local.instance() {
                    out[i] = local.get(&k.loc());
                }
                continue;
            }
            let Some(peer) = self.peer_for(&k.server, k.instance)? else {
                continue;
            };
            if peer.mapped.as_ref().is_some_and(|m| m.usable()) {
                // A server on this node: its segments, mapped, no copy.
                match mapped.iter_mut().find(|(p, _)| Arc::ptr_eq(p, &peer)) {
                    Some((_, v)) => v.push((i, k)),
                    None => mapped.push((peer, vec![(i, k)])),
                }
                continue;
            }
            copy.push((i, peer, k));
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
        let max_rma = match copy.is_empty() {
            true => u64::MAX,
            false => self.fabric()?.transport.max_rma_len(),
        };
        for (i, peer, k) in copy {
            // Past what one read of the fabric takes: over the stream path.
            let too_long = layout::wire_len(k.len).is_none_or(|w| w > max_rma);
            match peer.path {
                DataPath::Stream => out[i] = self.get_stream(&peer, &k)?,
                _ if too_long => out[i] = self.get_stream(&peer, &k)?,
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

    /// One-sided gets of many objects of one or more peers, pipelined.
    fn get_rma(&self, items: &[(Arc<Peer<T>>, ObjectKey)]) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; items.len()];
        let window = self.inner.cfg.client().max_in_flight.max(1);
        let idx: Vec<usize> = (0..items.len()).collect();
        let pool = &self.fabric()?.pool;
        for chunk in idx.chunks(window) {
            // 1. Post the data gets.
            let mut posted = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let (peer, k) = &items[i];
                let Some(seg) = self.segment(peer, k.seg)? else {
                    continue; // segment gone (or server restarted): None
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
                // Large objects land at the page phase they have on the
                // server, so the copy's source and destination agree modulo
                // a page (see `layout::PHASED`).
                let phase = if wire >= layout::PHASED {
                    (seg.base + k.offset) % layout::PAGE
                } else {
                    0
                };
                let buf = pool.acquire_at(wire as usize, phase as usize)?;
                let req = self.post_get(peer, &seg, k.offset, buf)?;
                posted.push((i, seg, req));
            }
            let reqs: Vec<_> = posted.iter().map(|(_, _, r)| r).collect();
            self.wait(&reqs, "get")?;
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
                let end = layout::HEADER + k.len as usize;
                if !layout::header_matches(s, k.id, k.len)
                    || !layout::trailer_matches(&s[end..], k.id)
                {
                    continue; // evicted (and maybe reused), or not committed: None
                }
                let hb = pool.acquire(layout::HEADER)?;
                let hreq = self.post_get(peer, &seg, k.offset, hb)?;
                checks.push((i, buf, hreq));
            }
            let reqs: Vec<_> = checks.iter().map(|(_, _, r)| r).collect();
            self.wait(&reqs, "get")?;
            // 3. Still the same object after the payload was read: hand it out.
            for (i, buf, hreq) in checks {
                let (peer, k) = &items[i];
                match hreq.take().expect("done") {
                    Ok(h) if layout::header_matches(h.as_slice(), k.id, k.len) => {
                        out[i] =
                            Some(buf.into_bytes(layout::HEADER..layout::HEADER + k.len as usize));
                    }
                    Ok(_) => {}
                    Err(e) => self.after_failure(peer, e, k)?,
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
        buf: proxy_core::mem::PoolBuf<T::Alloc>,
    ) -> Result<T::Op<proxy_core::mem::PoolBuf<T::Alloc>>> {
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
            return Err(e);
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
