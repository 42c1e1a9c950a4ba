//! Workers, endpoints and unpacked remote keys.

use std::ffi::c_void;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use proxy_core::{Error, Result};
use ucx_sys::*;

use super::{Context, UcsError, check, ffi_guard, status_error};

/// Destruction that needs the worker, queued by `Drop` and run under the lock.
enum Deferred {
    Rkey(ucp_rkey_h),
    Ep(ucp_ep_h, Arc<EpState>),
}

struct WorkerInner {
    raw: ucp_worker_h,
    lock: Mutex<()>,
    deferred: Mutex<Vec<Deferred>>,
    ctx: Arc<Context>,
}

// SAFETY: the worker is created in UCS_THREAD_MODE_SERIALIZED: any thread may
// use it as long as calls are serialized, which `lock` guarantees (every raw
// worker call goes through a `WorkerGuard`). The deferred queue holds raw
// handles that are only used under that same lock.
unsafe impl Send for WorkerInner {}
// SAFETY: see `Send`.
unsafe impl Sync for WorkerInner {}

impl WorkerInner {
    /// Run queued destructions. Caller holds the lock (or is the last owner).
    fn drain(&self) {
        let items = std::mem::take(&mut *self.deferred.lock());
        for item in items {
            match item {
                // SAFETY: the rkey was unpacked on an endpoint of this worker and
                // is destroyed once, before that endpoint (FIFO order: an rkey
                // holds its endpoint alive, so it is queued first).
                Deferred::Rkey(rkey) => unsafe { ucp_rkey_destroy(rkey) },
                Deferred::Ep(ep, state) => self.close_ep(ep, state),
            }
        }
    }

    fn close_ep(&self, ep: ucp_ep_h, state: Arc<EpState>) {
        let param = ucp_request_param_t {
            op_attr_mask: ucp_op_attr_t::UCP_OP_ATTR_FIELD_FLAGS.0,
            flags: ucp_ep_close_flags_t::UCP_EP_CLOSE_FLAG_FORCE.0,
            ..Default::default()
        };
        // SAFETY: `ep` belongs to this worker, is closed exactly once, and we hold the lock.
        let req = unsafe { ucp_ep_close_nbx(ep, &param) };
        // SAFETY: pure inspection of the returned pointer value.
        if unsafe { ps_ptr_is_ptr(req) } == 0 {
            return; // closed at once (or failed: nothing left to wait for)
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            // SAFETY: serialized access (lock held); `req` is a live request.
            unsafe { ucp_worker_progress(self.raw) };
            // SAFETY: `req` is live until we free it below.
            if unsafe { ucp_request_check_status(req) } != ucs_status_t::UCS_INPROGRESS {
                // SAFETY: completed request released exactly once.
                unsafe { ucp_request_free(req) };
                return;
            }
            if Instant::now() > deadline {
                // UCX still owns the request and may still call the error
                // handler with `state` as its argument: keep it alive forever.
                std::mem::forget(state);
                eprintln!("proxystore-ucx: endpoint close did not complete in 2 s; leaking it");
                return;
            }
        }
    }
}

impl Drop for WorkerInner {
    fn drop(&mut self) {
        self.drain();
        // SAFETY: last owner: no endpoint or rkey of this worker is alive (they
        // hold Arcs to it and their destructions were just drained).
        unsafe { ucp_worker_destroy(self.raw) };
    }
}

/// A UCP worker: progress engine and owner of endpoints. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<WorkerInner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker({:p})", self.inner.raw)
    }
}

impl Worker {
    /// Create a worker (serialized thread mode) on `ctx`.
    pub fn new(ctx: &Arc<Context>) -> Result<Worker> {
        let params = ucp_worker_params_t {
            field_mask: ucp_worker_params_field::UCP_WORKER_PARAM_FIELD_THREAD_MODE.0 as u64,
            thread_mode: ucs_thread_mode_t::UCS_THREAD_MODE_SERIALIZED,
            ..Default::default()
        };
        let mut raw: ucp_worker_h = ptr::null_mut();
        // SAFETY: the context is alive; params and out-pointer are valid.
        check("ucp_worker_create", unsafe {
            ucp_worker_create(ctx.raw(), &params, &mut raw)
        })?;
        Ok(Worker {
            inner: Arc::new(WorkerInner {
                raw,
                lock: Mutex::new(()),
                deferred: Mutex::new(Vec::new()),
                ctx: ctx.clone(),
            }),
        })
    }

    /// Serialize access to the worker (and run queued destructions).
    pub fn lock(&self) -> WorkerGuard<'_> {
        let g = self.inner.lock.lock();
        self.inner.drain();
        WorkerGuard {
            w: &self.inner,
            _g: g,
        }
    }

    /// The context this worker belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.inner.ctx
    }
}

/// Proof of exclusive access to a worker: every worker-bound call takes one.
pub struct WorkerGuard<'a> {
    w: &'a Arc<WorkerInner>,
    _g: MutexGuard<'a, ()>,
}

impl std::fmt::Debug for WorkerGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerGuard({:p})", self.w.raw)
    }
}

impl WorkerGuard<'_> {
    pub(crate) fn raw(&self) -> ucp_worker_h {
        self.w.raw
    }

    fn same_worker(&self, other: &Arc<WorkerInner>, op: &'static str) -> Result<()> {
        if Arc::ptr_eq(self.w, other) {
            Ok(())
        } else {
            Err(Error::permanent(
                "ucx",
                op,
                "handle used with another worker's guard",
            ))
        }
    }

    /// One round of progress; returns whether anything happened.
    pub fn progress(&self) -> bool {
        // SAFETY: serialized access guaranteed by the guard.
        unsafe { ucp_worker_progress(self.w.raw) != 0 }
    }

    /// The worker's address (for a peer's [`WorkerGuard::connect`]).
    pub fn address(&self) -> Result<Vec<u8>> {
        let mut addr: *mut ucp_address_t = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: serialized access; out-pointers valid.
        check("ucp_worker_get_address", unsafe {
            ucp_worker_get_address(self.w.raw, &mut addr, &mut len)
        })?;
        // SAFETY: UCX returned `len` readable bytes at `addr`.
        let out = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len) }.to_vec();
        // SAFETY: released once, on the worker that returned it.
        unsafe { ucp_worker_release_address(self.w.raw, addr) };
        Ok(out)
    }

    /// The worker's event file descriptor (context needs `Features::wakeup`).
    pub fn event_fd(&self) -> Result<RawFd> {
        let mut fd: RawFd = -1;
        // SAFETY: serialized access; out-pointer valid.
        check("ucp_worker_get_efd", unsafe {
            ucp_worker_get_efd(self.w.raw, &mut fd)
        })?;
        Ok(fd)
    }

    /// Arm the event fd: `Ok(true)` if it is now safe to sleep on it,
    /// `Ok(false)` if events are pending (progress again first).
    pub fn arm(&self) -> Result<bool> {
        // SAFETY: serialized access.
        match unsafe { ucp_worker_arm(self.w.raw) } {
            ucs_status_t::UCS_OK => Ok(true),
            ucs_status_t::UCS_ERR_BUSY => Ok(false),
            s => Err(status_error("ucp_worker_arm", s)),
        }
    }

    /// Create an endpoint to the worker whose address is `remote`.
    ///
    /// With `peer_failure`, peer failure detection (`UCP_ERR_HANDLING_MODE_PEER`:
    /// outstanding operations fail instead of hanging when the peer dies) is
    /// asked for first; some transport sets cannot provide it (UCX 1.13's
    /// shared-memory transports answer "unreachable", after logging an error),
    /// and then the endpoint is created without it (see
    /// [`Endpoint::detects_peer_failure`]): callers must bound waits themselves.
    pub fn connect(&self, remote: &[u8], peer_failure: bool) -> Result<Endpoint> {
        if !peer_failure {
            return self.connect_with(remote, ucp_err_handling_mode_t::UCP_ERR_HANDLING_MODE_NONE);
        }
        match self.connect_with(remote, ucp_err_handling_mode_t::UCP_ERR_HANDLING_MODE_PEER) {
            Err(e) if e.is_temporary() => self
                .connect_with(remote, ucp_err_handling_mode_t::UCP_ERR_HANDLING_MODE_NONE)
                .map_err(|_| e),
            r => r,
        }
    }

    fn connect_with(&self, remote: &[u8], mode: ucp_err_handling_mode_t) -> Result<Endpoint> {
        let state = Arc::new(EpState {
            failed: AtomicI8::new(0),
        });
        let mut field_mask = ucp_ep_params_field::UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
        if mode == ucp_err_handling_mode_t::UCP_ERR_HANDLING_MODE_PEER {
            field_mask |= ucp_ep_params_field::UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE
                | ucp_ep_params_field::UCP_EP_PARAM_FIELD_ERR_HANDLER;
        }
        let params = ucp_ep_params_t {
            field_mask: field_mask.0 as u64,
            address: remote.as_ptr().cast(),
            err_mode: mode,
            err_handler: ucp_err_handler_t {
                cb: Some(on_ep_error),
                // Borrowed pointer: `state` is kept alive until the endpoint is closed.
                arg: Arc::as_ptr(&state).cast_mut().cast(),
            },
            ..Default::default()
        };
        let mut ep: ucp_ep_h = ptr::null_mut();
        // SAFETY: serialized access; `remote` stays alive during the call (UCX
        // copies what it needs); `state` outlives the endpoint (see `Drop`).
        check("ucp_ep_create", unsafe {
            ucp_ep_create(self.w.raw, &params, &mut ep)
        })?;
        Ok(Endpoint {
            inner: Arc::new(EndpointInner {
                raw: ep,
                state,
                peer_failure: mode == ucp_err_handling_mode_t::UCP_ERR_HANDLING_MODE_PEER,
                worker: self.w.clone(),
            }),
        })
    }
}

struct EpState {
    /// 0 while healthy, the failure status once the error handler ran.
    failed: AtomicI8,
}

unsafe extern "C" fn on_ep_error(arg: *mut c_void, _ep: ucp_ep_h, status: ucs_status_t) {
    ffi_guard("endpoint error handler", || {
        // SAFETY: `arg` points to the EpState that the endpoint keeps alive until
        // it is closed (or leaks, if the close never completes).
        let state = unsafe { &*arg.cast::<EpState>() };
        let s = if status.0 == 0 {
            ucs_status_t::UCS_ERR_IO_ERROR.0
        } else {
            status.0
        };
        state.failed.store(s, Ordering::Release);
    });
}

struct EndpointInner {
    raw: ucp_ep_h,
    state: Arc<EpState>,
    peer_failure: bool,
    worker: Arc<WorkerInner>,
}

// SAFETY: the endpoint is only used through a `WorkerGuard` of its worker
// (checked at run time), i.e. serialized like the worker itself.
unsafe impl Send for EndpointInner {}
// SAFETY: see `Send`.
unsafe impl Sync for EndpointInner {}

impl Drop for EndpointInner {
    fn drop(&mut self) {
        // Closing needs the worker lock, which the dropping thread may hold:
        // queue it; it runs at the next `Worker::lock` (or worker destruction).
        self.worker
            .deferred
            .lock()
            .push(Deferred::Ep(self.raw, self.state.clone()));
    }
}

/// A connection to a remote worker. Cheap to clone; closed (forcefully) when
/// the last clone and the last [`RemoteKey`] unpacked on it are gone.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({:p})", self.inner.raw)
    }
}

impl Endpoint {
    /// The failure reported by UCX's error handler, if any: a failed endpoint
    /// must be dropped and a new one created.
    pub fn failure(&self) -> Option<UcsError> {
        match self.inner.state.failed.load(Ordering::Acquire) {
            0 => None,
            s => Some(UcsError(ucs_status_t(s))),
        }
    }

    /// Whether UCX reports the peer's death on this endpoint (error handling
    /// mode "peer"); if not, only the caller's timeouts bound a wait.
    pub fn detects_peer_failure(&self) -> bool {
        self.inner.peer_failure
    }

    pub(crate) fn raw(&self, g: &WorkerGuard<'_>, op: &'static str) -> Result<ucp_ep_h> {
        g.same_worker(&self.inner.worker, op)?;
        Ok(self.inner.raw)
    }

    /// Unpack a remote key packed by the peer ([`super::MemRegion::pack_rkey`]).
    pub fn unpack_rkey(&self, g: &WorkerGuard<'_>, packed: &[u8]) -> Result<RemoteKey> {
        let ep = self.raw(g, "ucp_ep_rkey_unpack")?;
        let mut rkey: ucp_rkey_h = ptr::null_mut();
        // SAFETY: serialized access; UCX validates the buffer's header and copies
        // what it needs (a corrupt buffer yields an error status).
        check("ucp_ep_rkey_unpack", unsafe {
            ucp_ep_rkey_unpack(ep, packed.as_ptr().cast(), &mut rkey)
        })?;
        Ok(RemoteKey {
            raw: rkey,
            ep: self.clone(),
        })
    }
}

/// A remote key unpacked on an endpoint; destroyed (deferred, like endpoints) on drop.
pub struct RemoteKey {
    raw: ucp_rkey_h,
    ep: Endpoint,
}

// SAFETY: only used through a guard of its endpoint's worker (see EndpointInner).
unsafe impl Send for RemoteKey {}
// SAFETY: see `Send`.
unsafe impl Sync for RemoteKey {}

impl std::fmt::Debug for RemoteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteKey({:p})", self.raw)
    }
}

impl RemoteKey {
    /// The endpoint it was unpacked on.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    pub(crate) fn raw(&self) -> ucp_rkey_h {
        self.raw
    }
}

impl Drop for RemoteKey {
    fn drop(&mut self) {
        self.ep
            .inner
            .worker
            .deferred
            .lock()
            .push(Deferred::Rkey(self.raw));
    }
}
