//! What a fabric implements to serve the object server's memory and to read
//! it one-sided: [`ServerTransport`] (in the server process) and
//! [`ClientTransport`] (in every reader and writer).
//!
//! The object server owns the objects, their layout, the control plane,
//! access control and the receive pool; a transport only registers memory,
//! hands out remote-access descriptors, connects to a peer's address, and
//! posts one-sided gets and puts into registered local buffers.
//!
//! # How the fabrics' registration models map onto it
//!
//! | step | UCX | libfabric | Mercury (Margo) |
//! |---|---|---|---|
//! | server address ([`ServerTransport::address`]) | `ucp_worker_get_address` | `fi_getname` on the `FI_EP_RDM` endpoint | `margo_addr_self` + `margo_addr_to_string` |
//! | segment memory ([`ServerTransport::allocate`]) | `ucp_mem_map(ALLOCATE)`: shared memory a peer on the node can map | `None`: the server maps it; `FI_MR_ALLOCATED` only needs it to be allocated | `None` |
//! | registration ([`ServerTransport::register`]) | `ucp_mem_map` of the address (or the allocation itself) | `fi_mr_reg` with `FI_REMOTE_READ` (readers) and `FI_REMOTE_WRITE` (writers): two MRs over the same memory; `FI_MR_ENDPOINT` binds them with `fi_mr_bind` + `fi_mr_enable` | `margo_bulk_create` with `HG_BULK_READ_ONLY` (readers) and `HG_BULK_READWRITE` (writers) |
//! | descriptor ([`Registration::descriptor`]) | `ucp_rkey_pack` | `fi_mr_key` (+ the address as offset, or 0 when the provider lacks `FI_MR_VIRT_ADDR`) | `margo_bulk_serialize` |
//! | unpack ([`ClientTransport::unpack`]) | `ucp_ep_rkey_unpack` | the key as is (`fi_mr_raw_attr`/`fi_mr_map_raw` for `FI_MR_RAW`) | `margo_bulk_deserialize` |
//! | local buffers ([`ClientTransport::Alloc`]) | `ucp_mem_map(ALLOCATE)` | `fi_mr_reg` of a mapping, `fi_mr_desc` passed to `fi_read` (`FI_MR_LOCAL`) | `margo_bulk_create` over the pool's buffer |
//! | get ([`ClientTransport::get`]) | `ucp_get_nbx` | `fi_read` into the descriptor's address | `margo_bulk_transfer(HG_BULK_PULL)` (origin: the server's handle) |
//! | completion ([`ClientTransport::wait`]) | `ucp_worker_progress`, request callback | `fi_cq_read` | `margo_wait` / `margo_test` on a request |
//!
//! Read-only remote access is asked for wherever the fabric has the notion
//! ([`Access::Read`]); [`ServerTransport::enforces_read_only`] says whether
//! the fabric enforces it (see the crate README's access-control table).

use std::any::Any;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proxy_core::Result;
use proxy_core::mem::{Allocator, PoolBuf};

use crate::config::TransportConfig;
use crate::memory::Memory;
use crate::proto::DataPath;

/// The access a remote-access descriptor grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One-sided reads only: what every reader gets.
    Read,
    /// Reads and writes: only a producer writing into its own reservation.
    ReadWrite,
}

/// A segment's registration with one transport (deregistered on drop).
pub trait Registration: Send + Sync {
    /// The remote-access descriptor granting `access` to the whole segment.
    fn descriptor(&self, access: Access) -> &[u8];
}

/// The server side of a fabric: object-safe, so one server process serves
/// the same segments over several transports at once.
pub trait ServerTransport: Send + Sync + 'static {
    /// The name clients ask for at hello (`"ucx"`, `"ofi"`, `"margo"`).
    fn name(&self) -> &'static str;
    /// The address a client connects its endpoint to.
    fn address(&self) -> &[u8];
    /// [`DataPath::Stream`] when one-sided reads are slow where this runs
    /// (clients on `Auto` then read over the control connection).
    fn data_path_hint(&self) -> DataPath {
        DataPath::Auto
    }
    /// Allocate `len` bytes of segment memory suited to this fabric (e.g.
    /// shared memory that peers on the node can map), or `None` to let the
    /// server map it. Only the first transport of a server is asked.
    fn allocate(&self, _len: usize, _prefault: bool) -> Result<Option<Memory>> {
        Ok(None)
    }
    /// Register `mem` (allocated by this transport, another one, or the
    /// server) for remote access.
    fn register(&self, mem: &Memory) -> Result<Box<dyn Registration>>;
    /// Whether a descriptor for [`Access::Read`] really refuses remote writes
    /// (the NIC or the kernel checks it), or is only what was asked for.
    fn enforces_read_only(&self) -> bool;
    /// Drive the fabric's progress on a thread of its own until `stop`.
    fn progress(&self, stop: &AtomicBool);
}

/// A finished or in-flight one-sided operation whose buffer `B` it owns
/// until the fabric completes it, even when the caller gives up.
pub trait Operation<B>: Send {
    /// Whether the fabric completed it.
    fn is_done(&self) -> bool;
    /// The buffer and the status, once done (`None` before, or if taken).
    fn take(&self) -> Option<Result<B>>;
}

/// The client side of a fabric.
pub trait ClientTransport: Send + Sync + Sized + 'static {
    /// The name the server knows this transport by; also the connector kind
    /// and the kind named in errors.
    const NAME: &'static str;
    /// The connector's configuration (shared options + the transport's own,
    /// and how a server for it is spawned on demand).
    type Config: TransportConfig;
    /// Registered receive memory for the shared [`proxy_core::mem::BufferPool`].
    type Alloc: Allocator;
    /// A connection to one server.
    type Endpoint: Send + Sync;
    /// An unpacked descriptor of one segment of one server.
    type Remote: Send + Sync;
    /// An in-flight operation owning its buffer.
    type Op<B: Send + 'static>: Operation<B>;

    /// Initialise the fabric for a client with `cfg`.
    fn new(cfg: &Self::Config) -> Result<Self>;
    /// The server side of this fabric, for an in-process owner.
    fn serve(cfg: &Self::Config) -> Result<Box<dyn ServerTransport>>;
    /// The allocator of this process's receive pool.
    fn allocator(&self) -> Self::Alloc;
    /// Whether one-sided reads are slow with `cfg` (clients on `Auto` stream
    /// instead). Decided from the configuration alone: it is asked before the
    /// fabric is initialized.
    fn prefers_stream(cfg: &Self::Config) -> bool;
    /// The largest one-sided read or write this fabric completes; larger
    /// objects are read and written over the stream path (the control
    /// connection) instead.
    fn max_rma_len(&self) -> u64 {
        u64::MAX
    }
    /// Connect to a server's [`ServerTransport::address`]; `same_host`: the
    /// server runs on this node's kernel, in this process's PID and IPC
    /// namespaces (its death is seen by the control connection, and
    /// shared-memory transports may serve the endpoint).
    fn connect(&self, address: &[u8], same_host: bool) -> Result<Self::Endpoint>;
    /// Whether the endpoint saw its peer fail.
    fn failed(&self, ep: &Self::Endpoint) -> bool;
    /// Whether a one-sided read from a server that has died may still
    /// succeed (e.g. UCX's shared-memory transports map the server's memory,
    /// which outlives it). When `false`, such a read fails or never
    /// completes, so a single get skips the liveness check of the server's
    /// watch connection (a system call per get) and checks it only when its
    /// read has not completed within a millisecond
    /// ([`wait_within`](Self::wait_within), which such a transport
    /// implements).
    fn reads_outlive_server(&self) -> bool {
        true
    }
    /// Progress until every one of `ops` is done or `within` has passed;
    /// whether they are done. Nothing is canceled. The default waits for
    /// nothing and says `true`.
    fn wait_within<B: Send + 'static>(&self, _ops: &[&Self::Op<B>], _within: Duration) -> bool {
        true
    }
    /// Unpack a segment's descriptor for use on `ep`.
    fn unpack(&self, ep: &Self::Endpoint, descriptor: &[u8]) -> Result<Self::Remote>;
    /// Post a one-sided read of `buf.len()` bytes at remote address `addr`.
    fn get(
        &self,
        ep: &Self::Endpoint,
        remote: &Self::Remote,
        addr: u64,
        buf: PoolBuf<Self::Alloc>,
    ) -> Result<Self::Op<PoolBuf<Self::Alloc>>>;
    /// Post a one-sided write of `src` to remote address `addr`.
    fn put(
        &self,
        ep: &Self::Endpoint,
        remote: &Self::Remote,
        addr: u64,
        src: Bytes,
    ) -> Result<Self::Op<Bytes>>;
    /// Post a flush: completes once every put on `ep` is remotely complete.
    fn flush(&self, ep: &Self::Endpoint) -> Result<Self::Op<()>>;
    /// Progress until every one of `ops` is done; after `timeout`, cancel
    /// them and fail with [`proxy_core::Error::Timeout`] (their buffers are
    /// released only when the fabric completes them, never before).
    fn wait<B: Send + 'static>(
        &self,
        ops: &[&Self::Op<B>],
        operation: &'static str,
        timeout: Duration,
    ) -> Result<()>;
    /// Release what closed endpoints still hold (called at `close`).
    fn quiesce(&self) {}
}

/// Downcast helper for transports recognising their own [`Memory`].
pub fn owner_as<T: Any>(mem: &Memory) -> Option<&T> {
    mem.owner().downcast_ref::<T>()
}

/// The loop behind [`ClientTransport::wait`] for fabrics progressed by
/// polling under a lock: `lock` takes it, `progress` drives the fabric once
/// and says whether every operation is done, and after `timeout` `cancel`
/// asks the fabric to cancel them (their buffers stay owned by the
/// operations until the fabric completes them) before the timeout error.
pub fn poll_until_done<G>(
    kind: &'static str,
    operation: &'static str,
    timeout: Duration,
    lock: impl Fn() -> G,
    progress: impl Fn(&G) -> bool,
    cancel: impl Fn(&G),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut spins = 0u32;
    loop {
        {
            let g = lock();
            if progress(&g) {
                return Ok(());
            }
            if Instant::now() > deadline {
                cancel(&g);
                return Err(proxy_core::Error::Timeout {
                    connector: kind.into(),
                    operation,
                    after: timeout,
                });
            }
        }
        spins += 1;
        if spins % 64 == 0 {
            std::thread::yield_now();
        }
    }
}
