//! The client side: peers in the AV, registered receive buffers, one-sided
//! reads and writes, completion waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfabric_sys::{FI_DELIVERY_COMPLETE, FI_READ, FI_TRANSMIT_COMPLETE, FI_WRITE};
use object_server::{ClientTransport, Operation, ServerTransport};
use proxy_core::mem::{Allocator, Mmap, PoolBuf, Region};
use proxy_core::{Error, Result};

use super::{OfiRemote, OfiServer};
use crate::config::OfiConfig;
use crate::ofi::{Domain, Endpoint, Mr, Op, PeerAddr, RmaTarget};

/// A receive buffer: a pre-faulted mapping, registered for local access
/// when the provider asks for `FI_MR_LOCAL`.
#[derive(Debug)]
pub struct OfiRegion {
    // Field order: the registration is released before the mapping.
    mr: Option<Mr>,
    map: Mmap,
}

// SAFETY: an anonymous mapping stays in place, readable and writable, until
// dropped.
unsafe impl Region for OfiRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Receive buffers for one domain (registered on it when the provider asks
/// for `FI_MR_LOCAL`, and bound to the endpoint with `FI_MR_ENDPOINT`).
#[derive(Debug, Clone)]
pub struct OfiAlloc {
    domain: Arc<Domain>,
    /// The endpoint registrations are bound to (`FI_MR_ENDPOINT` only).
    ep: Option<Arc<Endpoint>>,
}

impl Allocator for OfiAlloc {
    type Region = OfiRegion;
    fn allocate(&self, len: usize) -> Result<OfiRegion> {
        let map = Mmap::anonymous(len, true)
            .map_err(|e| Error::io("map a libfabric receive buffer", e))?;
        let domain = &self.domain;
        let mr = if domain.mr_mode().local() {
            let g = domain.lock();
            // SAFETY: the mapping lives in the same OfiRegion and is unmapped
            // only after the registration is released (field order).
            Some(unsafe {
                Mr::register(
                    &g,
                    domain,
                    self.ep.as_ref(),
                    map.as_ptr(),
                    map.len(),
                    (FI_READ | FI_WRITE) as u64,
                )?
            })
        } else {
            None
        };
        Ok(OfiRegion { mr, map })
    }
}

// SAFETY: the pool's region never moves and stays valid while the buffer
// lives; the buffer is owned by the operation while in flight; the
// descriptor is the region's own registration, alive as long as the buffer.
unsafe impl RmaTarget for PoolBuf<OfiAlloc> {
    fn target(&mut self) -> (*mut u8, usize) {
        (self.as_ptr(), self.len())
    }
    fn desc(&self) -> *mut std::ffi::c_void {
        self.region()
            .mr
            .as_ref()
            .map_or(std::ptr::null_mut(), Mr::desc)
    }
}

impl<B: Send + 'static> Operation<B> for Op<B> {
    fn is_done(&self) -> bool {
        Op::is_done(self)
    }
    fn take(&self) -> Option<Result<B>> {
        Op::take(self)
    }
}

/// libfabric in a client process: one domain per connector, and the
/// endpoint new peers are inserted on (replaced by a fresh one where the
/// provider would hand a new peer a removed peer's stale state:
/// [`Endpoint::reuses_stale_slots`]; peers on an older endpoint keep it).
#[derive(Debug)]
pub struct Ofi {
    domain: Arc<Domain>,
    ep: parking_lot::Mutex<Arc<Endpoint>>,
    timeout: Duration,
    /// The largest one-sided transfer (see `max_rma_len`), read once.
    max_rma: u64,
    /// Puts complete at `FI_TRANSMIT_COMPLETE` and a flush reads back (see
    /// `put`), else they complete at `FI_DELIVERY_COMPLETE`.
    transmit_complete: bool,
    /// The provider is `shm`.
    shm: bool,
}

impl Ofi {
    fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// The endpoint new peers are inserted on.
    fn endpoint(&self) -> Arc<Endpoint> {
        self.ep.lock().clone()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Progress each endpoint `ops` were posted on, once (no allocation:
    /// there is one endpoint but after a restart); whether all are done.
    fn progress_all<B>(&self, ops: &[&Op<B>], g: &crate::ofi::DomainGuard<'_>) -> bool {
        for (i, op) in ops.iter().enumerate() {
            let ep = op.endpoint();
            if !ops[..i].iter().any(|o| Arc::ptr_eq(o.endpoint(), ep)) {
                ep.progress(g);
            }
        }
        ops.iter().all(|r| r.is_done())
    }

    /// The provider and domain in use.
    pub fn provider(&self) -> String {
        self.domain().info().describe()
    }
}

impl ClientTransport for Ofi {
    const NAME: &'static str = "ofi";
    type Config = OfiConfig;
    type Alloc = OfiAlloc;
    type Endpoint = PeerAddr;
    type Remote = OfiRemote;
    type Op<B: Send + 'static> = Op<B>;

    fn new(cfg: &OfiConfig) -> Result<Ofi> {
        let domain = Arc::new(Domain::open(&cfg.query())?);
        let info = domain.info();
        let max_rma = if info.provider() == "shm" {
            info.max_msg_size().min(1 << 30)
        } else {
            info.max_msg_size()
        };
        let shm = info.provider() == "shm";
        let transmit_complete = shm && !domain.mr_mode().local();
        Ok(Ofi {
            ep: parking_lot::Mutex::new(Endpoint::open(&domain)?),
            domain,
            timeout: cfg.client.timeout(),
            max_rma,
            transmit_complete,
            shm,
        })
    }

    fn serve(cfg: &OfiConfig) -> Result<Box<dyn ServerTransport>> {
        Ok(Box::new(OfiServer::new(&cfg.query())?))
    }

    fn allocator(&self) -> OfiAlloc {
        // Registrations belong to the domain (any of its endpoints may use
        // them), except with FI_MR_ENDPOINT, where the endpoint is never
        // replaced (see `connect`).
        OfiAlloc {
            domain: self.domain.clone(),
            ep: self.domain.mr_mode().endpoint().then(|| self.endpoint()),
        }
    }

    fn prefers_stream(_: &OfiConfig) -> bool {
        false
    }

    /// The endpoint's `max_msg_size`; on the `shm` provider (libfabric
    /// 1.17) at most 1 GiB: one-sided reads of 2 GiB and more never complete
    /// there (`tests/large.rs` found it), so larger objects are read and
    /// written over the control connection.
    fn max_rma_len(&self) -> u64 {
        self.max_rma
    }

    fn connect(&self, address: &[u8], _same_host: bool) -> Result<PeerAddr> {
        let ep = {
            let mut cur = self.ep.lock();
            if cur.reuses_stale_slots() && !self.domain.mr_mode().endpoint() {
                *cur = Endpoint::open(&self.domain)?;
            }
            cur.clone()
        };
        ep.insert(address)
    }

    fn failed(&self, ep: &PeerAddr) -> bool {
        ep.failed()
    }

    /// `false` over `shm`: it never reads a dead process's memory (a read
    /// is `process_vm_readv`, which fails once the server has exited;
    /// libfabric 1.17 then reports the error without the operation's
    /// context, so the read never completes here, which `wait_within`
    /// notices within a millisecond). `true` elsewhere, although the
    /// network providers do not read a dead process's memory either:
    /// `tcp;ofi_rxm` refuses a read posted to a dead peer with `-FI_EAGAIN`
    /// until the timeout, so the liveness check before it is what fails
    /// such a get fast (and costs little next to a read over TCP).
    fn reads_outlive_server(&self) -> bool {
        !self.shm
    }

    fn wait_within<B: Send + 'static>(&self, ops: &[&Op<B>], within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            {
                let g = self.domain().lock();
                if self.progress_all(ops, &g) {
                    return true;
                }
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    fn unpack(&self, _ep: &PeerAddr, descriptor: &[u8]) -> Result<OfiRemote> {
        OfiRemote::unpack(descriptor)
    }

    fn get(
        &self,
        ep: &PeerAddr,
        remote: &OfiRemote,
        addr: u64,
        buf: PoolBuf<OfiAlloc>,
    ) -> Result<Op<PoolBuf<OfiAlloc>>> {
        let at = remote.target(addr)?;
        let g = self.domain().lock();
        ep.read(&g, at, remote.key(), buf, self.deadline())
    }

    /// A put is committed (made visible to readers) only after its writes
    /// and then [`flush`](ClientTransport::flush) completed, so what matters
    /// is that the flush's completion implies the bytes are in the server's
    /// memory.
    ///
    /// - `shm`: writes complete at `FI_TRANSMIT_COMPLETE`, and the flush is
    ///   a one-byte read of the last write's destination. With cross-memory
    ///   attach (the usual case) a write without `FI_DELIVERY_COMPLETE`
    ///   takes `shm`'s fast path: `process_vm_writev` into the server's
    ///   memory inside `fi_writemsg`, before its completion is written, so
    ///   the bytes are there when the put completes, and the flush's read
    ///   (the same fast path) is one cheap system call. Without it
    ///   (`FI_SHM_DISABLE_CMA`, or ptrace rules that forbid it) a write is a
    ///   command in the server's queue, applied by the server's progress,
    ///   and its transmit completion says only that the source may be
    ///   reused; the flush's read is a command in the same queue, which the
    ///   server serves in order (`shm` posts nothing to a peer while a
    ///   segmented transfer to it is unfinished), so the read completes
    ///   after every earlier write was applied. Either way the flush
    ///   completes only once the bytes are delivered, which is what
    ///   `FI_DELIVERY_COMPLETE` on every write bought, at a cost: it takes
    ///   the server-progressed path for every write (1 MB put 4.6x UCX's).
    /// - Other providers: `FI_DELIVERY_COMPLETE` on every write (complete
    ///   only once visible at the target), and the flush has nothing left
    ///   to do. Their reads need not be ordered after writes (no
    ///   `FI_ORDER_RAW` asked for), so a read-back would prove nothing.
    fn put(&self, ep: &PeerAddr, remote: &OfiRemote, addr: u64, src: Bytes) -> Result<Op<Bytes>> {
        let at = remote.target(addr)?;
        let completion = if self.transmit_complete {
            FI_TRANSMIT_COMPLETE
        } else {
            FI_DELIVERY_COMPLETE
        };
        let g = self.domain().lock();
        ep.write(
            &g,
            at,
            remote.key(),
            src,
            completion as u64,
            self.deadline(),
        )
    }

    fn flush(&self, ep: &PeerAddr) -> Result<Op<()>> {
        if !self.transmit_complete {
            // Delivered already (see `put`).
            return Ok(Op::ready(ep, "flush", ()));
        }
        let g = self.domain().lock();
        ep.read_back(&g, self.deadline())
    }

    fn wait<B: Send + 'static>(
        &self,
        ops: &[&Op<B>],
        operation: &'static str,
        timeout: Duration,
    ) -> Result<()> {
        object_server::transport::poll_until_done(
            Self::NAME,
            operation,
            timeout,
            || self.domain().lock(),
            |g| self.progress_all(ops, g),
            |g| ops.iter().for_each(|r| r.cancel(g)),
        )
    }

    fn quiesce(&self) {
        let ep = self.endpoint();
        let g = self.domain().lock();
        ep.progress(&g);
    }
}
