//! Margo as a transport of the shared object server: [`MargoServer`]
//! exposes every segment through two bulk handles and hands out their
//! serialized forms; [`Margo`] pulls (gets) and pushes (puts into
//! reservations) with `margo_bulk_ctransfer_timed`, between the server's
//! handles and the shared pool's buffers, each covered by a bulk handle
//! created once when the pool maps it.
//!
//! Descriptor: `version (1) | flags (1, zero) | segment address (u64 LE) |
//! segment length (u64 LE) | HG_Bulk_serialize output`. The object server
//! names remote memory by the segment's virtual address (`base + offset`);
//! a bulk transfer takes the offset into the handle, `addr - base`.
//!
//! Read-only access: a segment is exposed once with `HG_BULK_READ_ONLY` (the
//! handle every reader gets) and once with `HG_BULK_READWRITE` (granted only
//! to a connection holding a reservation). Whether a push through a reader's
//! handle is refused at the target depends on the NA plugin; see
//! [`crate::enforces_read_only`].

mod client;
mod server;

pub use client::{Margo, MargoAlloc, MargoRegion};
pub use server::MargoServer;

use std::sync::Arc;

use proxy_core::{Error, Result};

use crate::margo::{Bulk, Instance};

const VERSION: u8 = 1;
const HEADER: usize = 18;

/// An unpacked segment descriptor: the server's handle on this client's
/// instance, and where the segment lies in the server's address space.
#[derive(Debug, Clone)]
pub struct MargoRemote {
    base: u64,
    bulk: Arc<Bulk>,
}

pub(crate) fn pack(base: u64, len: u64, serialized: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(HEADER + serialized.len());
    d.push(VERSION);
    d.push(0);
    d.extend_from_slice(&base.to_le_bytes());
    d.extend_from_slice(&len.to_le_bytes());
    d.extend_from_slice(serialized);
    d
}

/// `(base, len, serialized handle)` of a descriptor, checked.
pub(crate) fn parse(d: &[u8]) -> Result<(u64, u64, &[u8])> {
    if d.len() <= HEADER || d[0] != VERSION || d[1] != 0 {
        return Err(Error::permanent(
            crate::KIND,
            "unpack",
            format!(
                "not a Margo segment descriptor ({} bytes; a server of another transport or version?)",
                d.len()
            ),
        ));
    }
    let u = |r: std::ops::Range<usize>| u64::from_le_bytes(d[r].try_into().expect("8 bytes"));
    Ok((u(2..10), u(10..18), &d[HEADER..]))
}

impl MargoRemote {
    pub(crate) fn unpack(inst: &Arc<Instance>, d: &[u8]) -> Result<MargoRemote> {
        let (base, len, ser) = parse(d)?;
        let bulk = Bulk::deserialize(inst, ser, len).map_err(|e| {
            Error::permanent(
                crate::KIND,
                "unpack",
                format!("the server's bulk handle does not deserialize here ({e}): a server with another Mercury protocol?"),
            )
        })?;
        Ok(MargoRemote {
            base,
            bulk: Arc::new(bulk),
        })
    }

    /// The offset into the handle of the object server's address `addr`.
    pub(crate) fn offset(&self, addr: u64) -> Result<u64> {
        addr.checked_sub(self.base).ok_or_else(|| {
            Error::permanent(
                crate::KIND,
                "bulk transfer",
                format!("address {addr:#x} below its segment at {:#x}", self.base),
            )
        })
    }

    /// The server's handle.
    pub fn bulk(&self) -> &Arc<Bulk> {
        &self.bulk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip_and_foreign_ones() {
        let d = pack(0x7000_0000, 4096, &[9, 8, 7]);
        let (base, len, ser) = parse(&d).unwrap();
        assert_eq!((base, len, ser), (0x7000_0000, 4096, &[9u8, 8, 7][..]));
        assert!(parse(&d[..HEADER]).is_err());
        let mut bad = d.clone();
        bad[0] = 9;
        assert!(parse(&bad).is_err());
        // A libfabric descriptor (18 bytes, version 1, flags 1) is not one.
        let mut ofi = vec![1u8, 1];
        ofi.extend_from_slice(&[0; 16]);
        assert!(parse(&ofi).is_err());
    }
}
