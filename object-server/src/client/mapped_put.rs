//! Same-node puts without the fabric: a writer on the server's node (zero
//! copy on) maps each segment it puts into writable, once, and copies the
//! payload into the reserved slot itself; the commit then makes it visible
//! as after a one-sided put. This is what UCX does underneath on one node
//! (its shared-memory transports write through a mapping); libfabric's
//! `shm` instead writes with `process_vm_writev`, which pins the target's
//! pages one by one (a 1 MB put took twice UCX's). Where a segment cannot
//! be mapped writable (another PID namespace, no permission, a
//! server with private segments), puts go over the fabric from then on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use proxy_core::{Error, Payload, Result};

use super::ObjectClient;
use super::control::Peer;
use super::write_map::{WriteMap, WriteMaps, map_writable};
use crate::layout;
use crate::proto::Loc;
use crate::stream::Conn;
use crate::transport::ClientTransport;

impl<T: ClientTransport> ObjectClient<T> {
    /// Whether large puts to `peer` go through writable mappings (same
    /// node, zero copy on, no segment found unmappable yet).
    pub(super) fn maps_puts(&self, peer: &Peer<T>) -> bool {
        peer.mapped
            .as_ref()
            .is_some_and(|m| !m.writes.off.load(Ordering::Relaxed))
    }

    /// The writable mapping of segment `seg` (asked for on `s`, mapped on
    /// first use); `None` when it cannot be mapped here (then never again).
    fn write_map(
        &self,
        peer: &Arc<Peer<T>>,
        w: &WriteMaps,
        s: &mut Conn,
        seg: u32,
    ) -> Result<Option<Arc<Mutex<WriteMap>>>> {
        if let Some(m) = w.maps.lock().get(&seg) {
            return Ok(Some(m.clone()));
        }
        let info = self.write_segment_info(peer, s, seg)?;
        match map_writable(peer.pid, &info) {
            Ok(m) => {
                let mut maps = w.maps.lock();
                // Forget segments the server has unmapped.
                maps.retain(|id, _| info.live.binary_search(id).is_ok());
                Ok(Some(
                    maps.entry(seg)
                        .or_insert_with(|| Arc::new(Mutex::new(m)))
                        .clone(),
                ))
            }
            Err(_) => {
                w.off.store(true, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Copy `data` into the reserved `locs` through writable mappings of
    /// the peer's segments: `Ok(false)` (nothing written) when the peer is
    /// not mapped here, and the fabric writes instead.
    pub(super) fn write_mapped(
        &self,
        peer: &Arc<Peer<T>>,
        s: &mut Conn,
        data: &[&Payload],
        locs: &[Loc],
    ) -> Result<bool> {
        let Some(w) = peer.mapped.as_ref().map(|m| &m.writes) else {
            return Ok(false);
        };
        if !self.maps_puts(peer) {
            return Ok(false);
        }
        let mut maps = Vec::with_capacity(locs.len());
        for loc in locs {
            match self.write_map(peer, w, s, loc.seg)? {
                Some(m) => maps.push(m),
                None => return Ok(false),
            }
        }
        for ((p, loc), m) in data.iter().zip(locs).zip(&maps) {
            let mut g = m.lock();
            let (delta, len) = (g.delta, g.len);
            let Some(seg) = g.as_mut_slice() else {
                return Ok(false);
            };
            let start = loc.offset as usize + layout::HEADER;
            let end = start + p.len();
            if end > len {
                return Err(Error::permanent(
                    T::NAME,
                    "put",
                    format!("the server reserved {loc:?} past its segment's {len} bytes"),
                ));
            }
            let mut at = delta + start;
            for part in p.parts() {
                seg[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        Ok(true)
    }
}
