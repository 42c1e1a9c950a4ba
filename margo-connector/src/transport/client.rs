//! The client side: addresses, receive buffers covered by bulk handles,
//! bulk pulls and pushes, completion waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_server::{ClientTransport, Operation, ServerTransport};
use proxy_core::mem::{Allocator, Mmap, PoolBuf, Region};
use proxy_core::{Error, Result};

use super::{MargoRemote, MargoServer};
use crate::config::MargoConfig;
use crate::margo::{Addr, Bulk, BulkAccess, BulkBuf, Direction, Instance, Transfer};

/// A receive buffer: a pre-faulted mapping and the bulk handle over it,
/// created once when the pool maps the buffer and reused by every get that
/// lands in it.
#[derive(Debug)]
pub struct MargoRegion {
    // Field order: the handle is freed before the mapping.
    bulk: Bulk,
    map: Mmap,
}

// SAFETY: an anonymous mapping stays in place, readable and writable, until
// dropped.
unsafe impl Region for MargoRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Receive buffers of one Margo instance.
#[derive(Debug, Clone)]
pub struct MargoAlloc {
    inst: Arc<Instance>,
}

impl Allocator for MargoAlloc {
    type Region = MargoRegion;
    fn allocate(&self, len: usize) -> Result<MargoRegion> {
        let map =
            Mmap::anonymous(len, true).map_err(|e| Error::io("map a Margo receive buffer", e))?;
        // SAFETY: the mapping lives in the same MargoRegion and is unmapped
        // only after the handle is freed (field order).
        let bulk =
            unsafe { Bulk::create(&self.inst, map.as_ptr(), map.len(), BulkAccess::ReadWrite)? };
        Ok(MargoRegion { bulk, map })
    }
}

// SAFETY: the pool's region never moves and stays valid while the buffer
// lives; its handle covers the whole region, of which the buffer is the
// part at `as_ptr() - region start`.
unsafe impl BulkBuf for PoolBuf<MargoAlloc> {
    fn local(&self) -> (&Bulk, u64, u64) {
        let r = self.region();
        let offset = self.as_ptr() as u64 - r.map.as_ptr() as u64;
        (&r.bulk, offset, self.len() as u64)
    }
}

impl<B: Send + 'static> Operation<B> for Transfer<B> {
    fn is_done(&self) -> bool {
        Transfer::is_done(self)
    }
    fn take(&self) -> Option<Result<B>> {
        Transfer::take(self)
    }
}

/// Margo in a client process: the process's client instance for the
/// configured protocol (shared by its connectors).
#[derive(Debug)]
pub struct Margo {
    inst: Arc<Instance>,
    timeout: Duration,
    pulls: AtomicU64,
}

impl Margo {
    /// The instance (its protocol and address).
    pub fn instance(&self) -> &Arc<Instance> {
        &self.inst
    }

    /// Bulk pulls (`HG_BULK_PULL`) this connector has started: a get over
    /// the fabric starts at least one; a get of a same-node server's mapped
    /// segment, or over the stream path, none.
    pub fn pulls(&self) -> u64 {
        self.pulls.load(Ordering::Relaxed)
    }
}

/// Whether `protocol` is Mercury's shared-memory plugin (`na+sm`, `sm`,
/// with or without an address).
fn is_na_sm(protocol: &str) -> bool {
    let class = protocol.split("://").next().unwrap_or(protocol);
    matches!(class, "na+sm" | "sm")
}

impl ClientTransport for Margo {
    const NAME: &'static str = "margo";
    type Config = MargoConfig;
    type Alloc = MargoAlloc;
    type Endpoint = Addr;
    type Remote = MargoRemote;
    type Op<B: Send + 'static> = Transfer<B>;

    fn new(cfg: &MargoConfig) -> Result<Margo> {
        Ok(Margo {
            inst: Instance::client(&cfg.effective_protocol())?,
            timeout: cfg.client.timeout(),
            pulls: AtomicU64::new(0),
        })
    }

    fn serve(cfg: &MargoConfig) -> Result<Box<dyn ServerTransport>> {
        Ok(Box::new(MargoServer::new(&cfg.effective_protocol())?))
    }

    fn allocator(&self) -> MargoAlloc {
        MargoAlloc {
            inst: self.inst.clone(),
        }
    }

    fn prefers_stream(_: &MargoConfig) -> bool {
        false
    }

    /// Over `na+sm`, Mercury moves a bulk transfer with one
    /// `process_vm_readv` (`process_vm_writev`), which Linux caps at
    /// `MAX_RW_COUNT` (`INT_MAX` rounded down to a page: 2^31 - 4096 with
    /// 4 KiB pages); a longer pull fails with `HG_MSGSIZE` after a short
    /// read (`tests/large.rs`, `objects_past_2_gib`, found it). Objects
    /// longer than 2^31 - 64 KiB (the cap with pages of up to 64 KiB) are
    /// read and written over the control connection there.
    fn max_rma_len(&self) -> u64 {
        if is_na_sm(self.inst.protocol()) {
            (1 << 31) - (1 << 16)
        } else {
            u64::MAX
        }
    }

    fn connect(&self, address: &[u8], _same_host: bool) -> Result<Addr> {
        let name = std::str::from_utf8(address).map_err(|_| {
            Error::permanent(
                crate::KIND,
                "connect",
                "the server's Margo address is not text (a server of another transport?)",
            )
        })?;
        self.inst.lookup(name)
    }

    fn failed(&self, ep: &Addr) -> bool {
        ep.failed()
    }

    fn unpack(&self, _ep: &Addr, descriptor: &[u8]) -> Result<MargoRemote> {
        MargoRemote::unpack(&self.inst, descriptor)
    }

    fn get(
        &self,
        ep: &Addr,
        remote: &MargoRemote,
        addr: u64,
        buf: PoolBuf<MargoAlloc>,
    ) -> Result<Transfer<PoolBuf<MargoAlloc>>> {
        let off = remote.offset(addr)?;
        let t = Transfer::start(
            ep,
            remote.bulk(),
            off,
            buf,
            Direction::Pull,
            self.timeout,
            "get",
        )?;
        self.pulls.fetch_add(1, Ordering::Relaxed);
        Ok(t)
    }

    fn put(
        &self,
        ep: &Addr,
        remote: &MargoRemote,
        addr: u64,
        src: Bytes,
    ) -> Result<Transfer<Bytes>> {
        let off = remote.offset(addr)?;
        Transfer::push_bytes(ep, remote.bulk(), off, src, self.timeout, "put")
    }

    fn flush(&self, _ep: &Addr) -> Result<Transfer<()>> {
        // A push completes once delivered (na+sm: process_vm_writev returned;
        // ofi: FI_DELIVERY_COMPLETE): nothing is left to flush.
        Ok(Transfer::ready(&self.inst.notify, (), "flush"))
    }

    fn wait<B: Send + 'static>(
        &self,
        ops: &[&Transfer<B>],
        operation: &'static str,
        timeout: Duration,
    ) -> Result<()> {
        // Margo cancels each transfer when its own timeout (the same one)
        // expires; the buffers stay with the transfers until then.
        let until = Instant::now() + timeout;
        if self
            .inst
            .wait_until(until, || ops.iter().all(|o| o.is_done()))
        {
            Ok(())
        } else {
            Err(Error::Timeout {
                connector: Self::NAME.into(),
                operation,
                after: timeout,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn na_sm_is_recognised_with_or_without_address() {
        for p in ["na+sm", "sm", "na+sm://1234-0"] {
            assert!(super::is_na_sm(p), "{p}");
        }
        for p in [
            "ofi+tcp",
            "ofi+tcp://127.0.0.1",
            "ucx+all",
            "ofi+shm",
            "na+smx",
        ] {
            assert!(!super::is_na_sm(p), "{p}");
        }
    }
}
