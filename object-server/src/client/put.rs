//! Puts: small objects over the control connection (pipelined), large ones
//! with one-sided puts into reserved slots, and the owner's own arena.

use std::io;
use std::sync::Arc;

use crate::stream::Conn;
use proxy_core::{Error, Key, Payload, Result};

use super::ObjectClient;
use super::control::{Ctl, Peer, ctl_err, send_request, unexpected};
use super::key::ObjectKey;
use crate::arena::ReserveError;
use crate::config::TransportConfig;
use crate::layout;
use crate::proto::{self, DataPath, Loc, Request, Response};
use crate::server::Local;
use crate::transport::{ClientTransport, Operation};

/// The error for a refused put of an object of `len` bytes.
pub(crate) fn put_error(kind: &str, addr: &str, len: u64, r: Response) -> Error {
    match r {
        // The slot holds the object and its framing: the largest object the
        // limit holds is the limit less that framing.
        Response::Full { size, limit, .. } if size > limit => Error::TooLarge {
            connector: kind.into(),
            size: len,
            limit: limit.saturating_sub(size.saturating_sub(len)),
        },
        Response::Full { size, used, limit } => Error::permanent(
            kind,
            "put",
            format!(
                "object server {addr} is full: {used} of {limit} bytes in use, the object needs {size} more \
                 (evict objects or raise --memory-limit)"
            ),
        ),
        Response::Error(m) => Error::permanent(kind, "put", format!("object server {addr}: {m}")),
        other => unexpected(kind, "put", other),
    }
}

impl<T: ClientTransport> ObjectClient<T> {
    fn key(&self, peer: &Peer<T>, loc: Loc) -> Key {
        Key::encode(&ObjectKey::new(&peer.addr, peer.instance, loc))
    }

    /// Evict `keys` (best effort: a batch is never left half stored).
    fn undo(&self, keys: &[Key]) {
        for k in keys {
            let _ = self.evict_one(k);
        }
    }

    pub(crate) fn put_many(&self, data: &[Payload]) -> Result<Vec<Key>> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(o) = &self.inner.owner {
            return self.put_local(&o.addr, &o.local, data);
        }
        for _ in 0..2 {
            let peer = self.home_peer()?;
            if !peer.alive() {
                self.invalidate(&peer); // restarted or gone: reconnect
                continue;
            }
            let threshold = self.inner.cfg.client().rma_put_threshold;
            // Past what one write of the fabric takes: over the stream path
            // (a same-node writer's mapping takes any size, and needs no
            // fabric: see `mapped_put.rs`).
            let max_rma = match peer.path {
                DataPath::Rma if self.maps_puts(&peer) => u64::MAX,
                DataPath::Rma => self.fabric()?.transport.max_rma_len(),
                _ => u64::MAX,
            };
            let (big, small): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&i| {
                let len = data[i].len() as u64;
                peer.path == DataPath::Rma && len >= threshold && len <= max_rma
            });
            if big.is_empty() {
                match self.put_on(&peer, data)? {
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
                Ok(Ctl::Stale) => {
                    self.undo(&small_keys);
                    continue;
                }
                Err(e) => {
                    self.undo(&small_keys);
                    return Err(e);
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
        Err(Error::temporary(
            T::NAME,
            "put",
            "object server keeps restarting",
        ))
    }

    /// Puts over the control connection, pipelined in windows.
    fn put_on(&self, peer: &Arc<Peer<T>>, data: &[Payload]) -> Result<Ctl<Vec<Key>>> {
        let window = self.inner.cfg.client().max_in_flight.max(1);
        let r = self.with_conn(peer, "put", |s| {
            let mut out = Vec::with_capacity(data.len());
            for chunk in data.chunks(window) {
                for p in chunk {
                    let req = Request::Put {
                        len: p.len() as u64,
                    };
                    send_request(s, &req, Some(p))?;
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
        for (resp, p) in resps.into_iter().zip(data) {
            match resp {
                Response::Put(loc) => keys.push(self.key(peer, loc)),
                other => {
                    first_err.get_or_insert(put_error(T::NAME, &peer.addr, p.len() as u64, other));
                }
            }
        }
        if let Some(e) = first_err {
            self.undo(&keys);
            return Err(e);
        }
        Ok(Ctl::Done(keys))
    }

    /// Large puts on the RMA data path: reserve slots (pipelined, on one
    /// control connection), write the payloads with one-sided puts straight
    /// from the caller's `Bytes` (no copy), flush the endpoint (remote
    /// completion), then commit. Readers see an object only after its commit.
    fn put_rma(&self, peer: &Arc<Peer<T>>, data: &[&Payload]) -> Result<Ctl<Vec<Key>>> {
        let Some(mut s) = self.connection(peer)? else {
            return Ok(Ctl::Stale);
        };
        let err = |e| ctl_err(T::NAME, "put", &peer.addr, self.timeout(), e);
        let resps = (|| -> io::Result<Vec<Response>> {
            for p in data {
                let req = Request::Reserve {
                    len: p.len() as u64,
                    phase: layout::payload_phase(p) as u16,
                };
                proto::write_frame(&mut s, &req)?;
            }
            let mut v = Vec::with_capacity(data.len());
            for _ in data {
                v.push(proto::read_frame::<Response>(&mut s)?.ok_or(io::ErrorKind::UnexpectedEof)?);
            }
            Ok(v)
        })()
        .map_err(err)?;
        let mut locs = Vec::with_capacity(resps.len());
        for (r, p) in resps.into_iter().zip(data) {
            match r {
                Response::Put(loc) => locs.push(loc),
                // Dropping `s` releases the reservations made so far (nothing was written).
                other => return Err(put_error(T::NAME, &peer.addr, p.len() as u64, other)),
            }
        }
        if let Err(e) = self.write_reserved(peer, &mut s, data, &locs) {
            // The fabric may still write into the reserved slots: keep them reserved.
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
        committed.map_err(err)?;
        peer.idle.lock().push(s);
        Ok(Ctl::Done(locs.iter().map(|&l| self.key(peer, l)).collect()))
    }

    /// Post the one-sided puts of `data` into the reserved `locs`, wait,
    /// flush (or, on the same node, copy them in through a mapping).
    fn write_reserved(
        &self,
        peer: &Arc<Peer<T>>,
        s: &mut Conn,
        data: &[&Payload],
        locs: &[Loc],
    ) -> Result<()> {
        // Same node, zero copy on: through a writable mapping (`mapped_put.rs`).
        if self.write_mapped(peer, s, data, locs)? {
            return Ok(());
        }
        let t = &self.fabric()?.transport;
        let ep = self.endpoint(peer)?;
        let mut segs = Vec::with_capacity(locs.len());
        for loc in locs {
            segs.push(self.write_segment(peer, s, loc.seg)?);
        }
        let mut reqs = Vec::new();
        for ((p, loc), seg) in data.iter().zip(locs).zip(&segs) {
            let mut addr = seg.base + loc.offset + layout::HEADER as u64;
            for part in p.parts() {
                reqs.push(t.put(ep, &seg.remote, addr, part.clone())?);
                addr += part.len() as u64;
            }
        }
        let refs: Vec<_> = reqs.iter().collect();
        self.wait(&refs, "put")?;
        for r in &reqs {
            r.take().expect("done")?;
        }
        let flush = t.flush(ep)?;
        self.wait(&[&flush], "put")?;
        flush.take().expect("done")?;
        Ok(())
    }

    /// Owner-mode puts: each payload is copied once, part by part, from the
    /// caller's `Bytes` into a reserved slot of this process's registered arena.
    fn put_local(&self, addr: &str, local: &Local, data: &[Payload]) -> Result<Vec<Key>> {
        let mut keys = Vec::with_capacity(data.len());
        for p in data {
            match local.put(p) {
                Ok(loc) => keys.push(Key::encode(&ObjectKey::new(addr, local.instance(), loc))),
                Err(e) => {
                    self.undo(&keys);
                    return Err(match e {
                        ReserveError::Map(e) => e,
                        ReserveError::Full { size, used, limit } => put_error(
                            T::NAME,
                            addr,
                            p.len() as u64,
                            Response::Full { size, used, limit },
                        ),
                    });
                }
            }
        }
        Ok(keys)
    }
}
