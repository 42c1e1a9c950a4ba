//! libfabric as a transport of the shared object server: [`OfiServer`]
//! registers every segment twice and hands out the keys; [`Ofi`] reads (and
//! writes reservations) with `fi_read` / `fi_writemsg` into the shared
//! pool's buffers, registered with `fi_mr_reg` when the provider asks for
//! `FI_MR_LOCAL`.
//!
//! Descriptor (18 bytes): `version (1) | flags (1) | key (u64 LE) |
//! segment address (u64 LE)`. The object server names remote memory by the
//! segment's virtual address (`base + offset`); with `FI_MR_VIRT_ADDR`
//! (flag bit 0) that is what `fi_read` takes, without it the client
//! subtracts the segment address and reads at the offset into the MR.
//!
//! Read-only access: a segment is registered once with `FI_REMOTE_READ`
//! (the key every reader gets) and once with `FI_REMOTE_READ |
//! FI_REMOTE_WRITE` (the key granted only to a connection holding a
//! reservation). Whether a write with the read key is refused is up to the
//! provider; see [`crate::enforces_read_only`] and the crate README.

mod client;
mod server;

pub use client::{Ofi, OfiAlloc, OfiRegion};
pub use server::OfiServer;

use proxy_core::{Error, Result};

const VERSION: u8 = 1;
const VIRT_ADDR: u8 = 1;
/// Length of a packed descriptor.
pub const DESCRIPTOR_LEN: usize = 18;

/// An unpacked segment descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfiRemote {
    key: u64,
    base: u64,
    virt_addr: bool,
}

impl OfiRemote {
    pub(crate) fn pack(key: u64, base: u64, virt_addr: bool) -> Vec<u8> {
        let mut d = Vec::with_capacity(DESCRIPTOR_LEN);
        d.push(VERSION);
        d.push(if virt_addr { VIRT_ADDR } else { 0 });
        d.extend_from_slice(&key.to_le_bytes());
        d.extend_from_slice(&base.to_le_bytes());
        d
    }

    pub(crate) fn unpack(d: &[u8]) -> Result<OfiRemote> {
        if d.len() != DESCRIPTOR_LEN || d[0] != VERSION || d[1] & !VIRT_ADDR != 0 {
            return Err(Error::permanent(
                crate::KIND,
                "unpack",
                format!(
                    "not a libfabric segment descriptor ({} bytes; a server of another transport or version?)",
                    d.len()
                ),
            ));
        }
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(d[r].try_into().expect("8 bytes"));
        Ok(OfiRemote {
            virt_addr: d[1] & VIRT_ADDR != 0,
            key: u(2..10),
            base: u(10..18),
        })
    }

    /// The address `fi_read` takes for the object server's address `addr`.
    pub(crate) fn target(&self, addr: u64) -> Result<u64> {
        if self.virt_addr {
            return Ok(addr);
        }
        addr.checked_sub(self.base).ok_or_else(|| {
            Error::permanent(
                crate::KIND,
                "fi_read",
                format!("address {addr:#x} below its segment at {:#x}", self.base),
            )
        })
    }

    /// The remote key.
    pub fn key(&self) -> u64 {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip_and_offsets() {
        let d = OfiRemote::pack(0xabcd, 0x7000_0000, false);
        assert_eq!(d.len(), DESCRIPTOR_LEN);
        let r = OfiRemote::unpack(&d).unwrap();
        assert_eq!(r.key(), 0xabcd);
        assert_eq!(r.target(0x7000_0040).unwrap(), 0x40);
        assert!(r.target(0x10).is_err());
        let v = OfiRemote::unpack(&OfiRemote::pack(7, 0x7000_0000, true)).unwrap();
        assert_eq!(v.target(0x7000_0040).unwrap(), 0x7000_0040);
        assert!(OfiRemote::unpack(&d[..17]).is_err());
        let mut bad = d.clone();
        bad[0] = 9;
        assert!(OfiRemote::unpack(&bad).is_err());
        // A UCX packed rkey is not a libfabric descriptor.
        assert!(OfiRemote::unpack(&[0u8; 40]).is_err());
    }
}
