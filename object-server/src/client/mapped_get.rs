//! [`ObjectClient`]'s same-node gets without a copy (see `mapped.rs` for the
//! mappings, pins and guarantees): map a peer's segments on first use, pin
//! the objects read, and hand out `Bytes` into the mapping.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use proxy_core::{Error, Result};

use super::ObjectClient;
use super::control::{Ctl, Peer, ctl_err, unexpected};
use super::key::ObjectKey;
use super::mapped::{
    ClientPage, MAPPED_COPY_BELOW, Mapped, MappedObject, MappedPeer, Mapping, PIN_CHUNK, PinConn,
    copy_checked, holds_object, map_segment,
};
use crate::layout;
use crate::proto::{Loc, Request, Response};
use crate::transport::ClientTransport;

impl<T: ClientTransport> ObjectClient<T> {
    /// The mapping of segment `seg` of `peer` (mapped on first use): `Ok(None)`
    /// if the segment is gone, `Err(())` if it cannot be mapped here.
    fn mapping(
        &self,
        peer: &Arc<Peer<T>>,
        m: &MappedPeer,
        seg: u32,
    ) -> Result<std::result::Result<Option<Arc<Mapping>>, ()>> {
        if let Some(s) = m.maps.lock().get(&seg) {
            return Ok(Ok(s.clone()));
        }
        let req = Request::Segment { seg, write: false };
        let info = match self.call(peer, "get", &req, None)? {
            Ctl::Done(Response::Segment(info)) => info,
            Ctl::Done(other) => return Err(unexpected(T::NAME, "get", other)),
            Ctl::Stale => return Ok(Ok(None)),
        };
        let map = match info {
            None => None,
            Some(info) => {
                let Some(shm) = info.shm else {
                    m.disable();
                    return Ok(Err(()));
                };
                match map_segment(peer.pid, &info, &shm) {
                    Ok(map) => {
                        // Forget segments the server has unmapped (their
                        // pages stay alive while mapped here).
                        m.maps
                            .lock()
                            .retain(|id, _| info.live.binary_search(id).is_ok());
                        Some(Arc::new(map))
                    }
                    Err(_) => {
                        m.disable();
                        return Ok(Err(()));
                    }
                }
            }
        };
        Ok(Ok(m.maps.lock().entry(seg).or_insert(map).clone()))
    }

    /// The pin connection of `peer` (opened on first use, reopened after a failure).
    fn pins(&self, peer: &Arc<Peer<T>>, m: &MappedPeer) -> Result<Option<Arc<PinConn>>> {
        let mut g = m.pins.lock();
        if let Some(s) = g.as_ref().filter(|s| !s.broken()) {
            return Ok(Some(s.clone()));
        }
        let Some(mut s) = self.fresh_connection(peer)? else {
            return Ok(None);
        };
        // Without a page (an old server, no shared memory), pins are requests.
        let page = ClientPage::open(&mut s, peer.pid).ok();
        let s = Arc::new(PinConn::new(s, page));
        *g = Some(s.clone());
        Ok(Some(s))
    }

    /// Gets of `keys` (all of `peer`, which is on this node) from the mapped
    /// segments: pinned, no copy.
    pub(crate) fn get_mapped(
        &self,
        peer: &Arc<Peer<T>>,
        keys: &[&ObjectKey],
    ) -> Result<Vec<Mapped>> {
        let m = peer.mapped.as_ref().expect("a mapped peer");
        let mut out: Vec<Mapped> = keys.iter().map(|_| Mapped::Copy).collect();
        // 1. Map the segments; bounds-check the keys.
        let mut want = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !m.usable() {
                return Ok(out);
            }
            let map = match self.mapping(peer, m, k.seg)? {
                Err(()) => return Ok(out),
                Ok(None) => {
                    out[i] = Mapped::Done(None);
                    continue;
                }
                Ok(Some(map)) => map,
            };
            let fits = layout::wire_len(k.len)
                .and_then(|w| k.offset.checked_add(w))
                .is_some_and(|end| end <= map.len() as u64);
            if !fits {
                return Err(Error::InvalidKey {
                    connector: T::NAME.into(),
                    reason: format!(
                        "object range {}+{} outside segment {} of {} bytes",
                        k.offset,
                        k.len,
                        k.seg,
                        map.len()
                    ),
                });
            }
            if k.len < MAPPED_COPY_BELOW {
                out[i] = Mapped::Done(copy_checked(&map, k));
                continue;
            }
            want.push((i, map));
        }
        if want.is_empty() {
            return Ok(out);
        }
        // 2. Pin them: in the pin page (no request), else with a request.
        let Some(pins) = self.pins(peer, m)? else {
            for (i, _) in want {
                out[i] = Mapped::Done(None); // the server restarted
            }
            return Ok(out);
        };
        if let Some(page) = &pins.page {
            let mut rest = Vec::new();
            for (i, map) in want {
                let k = keys[i];
                let Some(slot) = page.hold(k.id) else {
                    rest.push((i, map));
                    continue;
                };
                if !holds_object(&map, k) {
                    page.release(slot); // evicted (or not committed): None
                    out[i] = Mapped::Done(None);
                    continue;
                }
                map.populate(k.offset as usize + layout::HEADER, k.len as usize);
                out[i] = Mapped::Done(Some(Bytes::from_owner(MappedObject {
                    start: k.offset as usize + layout::HEADER,
                    len: k.len as usize,
                    map,
                    pins: pins.clone(),
                    slot: Some(slot),
                    loc: k.loc(),
                })));
            }
            want = rest;
        }
        for chunk in want.chunks(PIN_CHUNK) {
            let locs: Vec<Loc> = chunk.iter().map(|(i, _)| keys[*i].loc()).collect();
            let pinned = match pins.pin(&locs) {
                Ok(p) => p,
                Err(e) => {
                    if !peer.alive() {
                        self.invalidate(peer);
                    }
                    return Err(self.pin_error(peer, e));
                }
            };
            // 3. Hand out the slots themselves.
            for ((i, map), ok) in chunk.iter().zip(pinned) {
                if !ok {
                    out[*i] = Mapped::Done(None);
                    continue;
                }
                let k = keys[*i];
                let start = k.offset as usize;
                let h = &map.as_slice()[start..start + layout::HEADER];
                if !layout::header_matches(h, k.id, k.len) {
                    // Pinned, so committed and not evicted: the server and
                    // this mapping disagree. Never hand out other bytes.
                    pins.unpin(k.loc());
                    return Err(Error::permanent(
                        T::NAME,
                        "get",
                        format!("mapped segment {} does not hold object {}", k.seg, k.id),
                    ));
                }
                map.populate(start + layout::HEADER, k.len as usize);
                out[*i] = Mapped::Done(Some(Bytes::from_owner(MappedObject {
                    map: map.clone(),
                    pins: pins.clone(),
                    slot: None,
                    loc: k.loc(),
                    start: start + layout::HEADER,
                    len: k.len as usize,
                })));
            }
        }
        Ok(out)
    }

    fn pin_error(&self, peer: &Peer<T>, e: io::Error) -> Error {
        ctl_err(T::NAME, "get", &peer.addr, self.timeout(), e)
    }
}
