//! The client side: endpoints, remote keys, one-sided gets and puts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_server::{ClientTransport, Operation, ServerTransport};
use proxy_core::Result;
use proxy_core::mem::{Allocator, PoolBuf, Region};
use ucx_sys::ucp_mem_h;

use super::UcxServer;
use crate::config::{UcxConfig, tls_is_shm_only, tls_is_tcp_only};
use crate::ucx::{Context, Endpoint, MemRegion, RemoteKey, Request, RmaTarget, Worker};

/// Receive buffers allocated and registered by UCX on one context.
#[derive(Debug, Clone)]
pub struct UcxAlloc {
    ctx: Arc<Context>,
}

impl Allocator for UcxAlloc {
    type Region = MemRegion;
    fn allocate(&self, len: usize) -> Result<MemRegion> {
        MemRegion::allocate(&self.ctx, len, true)
    }
}

// SAFETY: a UCX mapping stays in place, readable and writable, until dropped.
unsafe impl Region for MemRegion {
    fn as_ptr(&self) -> *mut u8 {
        MemRegion::as_ptr(self)
    }
    fn len(&self) -> usize {
        MemRegion::len(self)
    }
}

// SAFETY: the pool's registered region never moves and stays valid while the
// buffer lives; the buffer is owned by the request while in flight.
unsafe impl RmaTarget for PoolBuf<UcxAlloc> {
    fn target(&mut self) -> (*mut u8, usize) {
        (self.as_ptr(), self.len())
    }

    fn memh(&self) -> Option<ucp_mem_h> {
        Some(self.region().memh())
    }
}

impl<B: Send + 'static> Operation<B> for Request<B> {
    fn is_done(&self) -> bool {
        Request::is_done(self)
    }
    fn take(&self) -> Option<Result<B>> {
        Request::take(self)
    }
}

/// UCX in a client process: one context and worker per connector.
#[derive(Debug)]
pub struct Ucx {
    worker: Worker,
    shm_only: bool,
}

impl ClientTransport for Ucx {
    const NAME: &'static str = "ucx";
    type Config = UcxConfig;
    type Alloc = UcxAlloc;
    type Endpoint = Endpoint;
    type Remote = RemoteKey;
    type Op<B: Send + 'static> = Request<B>;

    fn new(cfg: &UcxConfig) -> Result<Ucx> {
        let ctx = Context::rma(cfg.ucx_tls.as_deref(), false)?;
        let tls = cfg.tls();
        Ok(Ucx {
            worker: Worker::new(&ctx)?,
            shm_only: tls.as_deref().is_some_and(tls_is_shm_only),
        })
    }

    fn serve(cfg: &UcxConfig) -> Result<Box<dyn ServerTransport>> {
        Ok(Box::new(UcxServer::new(cfg.ucx_tls.as_deref())?))
    }

    fn allocator(&self) -> UcxAlloc {
        UcxAlloc {
            ctx: self.worker.context().clone(),
        }
    }

    fn prefers_stream(cfg: &UcxConfig) -> bool {
        cfg.tls().as_deref().is_some_and(tls_is_tcp_only)
    }

    /// Just under 2 GiB: UCX 1.22 over `shm,cma` failed a one-sided put of
    /// 2^31 bytes ("Connection reset by remote peer") and took 14 s for a
    /// get of 2^31 + 47 (`tests/large.rs`, `objects_past_2_gib`); UCX 1.13
    /// did both. Larger objects go over the control connection.
    fn max_rma_len(&self) -> u64 {
        (1 << 31) - (1 << 20)
    }

    /// Peer error handling (UCX's `UCP_ERR_HANDLING_MODE_PEER`) only for a
    /// server on another node: UCX 1.13's shared-memory transports do not
    /// offer it, so with it a same-node endpoint falls back to `tcp` over
    /// loopback (80 µs per 1 KB get instead of ~1 µs). A same-node server's
    /// death is seen by the control connection, and its segments stay
    /// readable (shared memory) or fail the read (`cma`).
    fn connect(&self, address: &[u8], same_host: bool) -> Result<Endpoint> {
        self.worker
            .lock()
            .connect(address, !(self.shm_only || same_host))
    }

    fn failed(&self, ep: &Endpoint) -> bool {
        ep.failure().is_some()
    }

    fn unpack(&self, ep: &Endpoint, descriptor: &[u8]) -> Result<RemoteKey> {
        ep.unpack_rkey(&self.worker.lock(), descriptor)
    }

    fn get(
        &self,
        ep: &Endpoint,
        remote: &RemoteKey,
        addr: u64,
        buf: PoolBuf<UcxAlloc>,
    ) -> Result<Request<PoolBuf<UcxAlloc>>> {
        ep.get(&self.worker.lock(), remote, addr, buf)
    }

    fn put(
        &self,
        ep: &Endpoint,
        remote: &RemoteKey,
        addr: u64,
        src: Bytes,
    ) -> Result<Request<Bytes>> {
        ep.put(&self.worker.lock(), remote, addr, src)
    }

    fn flush(&self, ep: &Endpoint) -> Result<Request<()>> {
        ep.flush(&self.worker.lock())
    }

    fn wait<B: Send + 'static>(
        &self,
        ops: &[&Request<B>],
        operation: &'static str,
        timeout: Duration,
    ) -> Result<()> {
        object_server::transport::poll_until_done(
            Self::NAME,
            operation,
            timeout,
            || self.worker.lock(),
            |g| {
                while g.progress() {}
                ops.iter().all(|r| r.is_done())
            },
            |g| ops.iter().for_each(|r| r.cancel(g)),
        )
    }

    fn quiesce(&self) {
        drop(self.worker.lock()); // run the deferred endpoint closes now
    }
}
