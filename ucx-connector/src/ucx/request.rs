//! Non-blocking RMA requests whose target buffer is owned by the request.
//!
//! Soundness rule: the destination buffer moves into the request when the
//! operation is posted and comes back only once UCX reported completion. If
//! the caller gives up (drops the [`Request`], times out, panics), the buffer
//! stays inside the shared request state, which the completion callback owns a
//! reference to: it is released (e.g. returned to its pool) only after UCX has
//! finished writing into it. No buffer is ever reused while UCX may write.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};

use parking_lot::Mutex;
use proxy_core::{Error, Result};
use ucx_sys::*;

use super::{Endpoint, RemoteKey, WorkerGuard, ffi_guard, status_error};

/// A destination for a one-sided get.
///
/// # Safety
/// `target` must return a pointer to `len` writable bytes that stay valid, at
/// the same address, and unaccessed by anyone else, for as long as the value
/// lives, even when the value is moved (e.g. heap or registered memory).
/// `memh`, if any, must be a registration covering that range.
pub unsafe trait RmaTarget: Send + 'static {
    /// Destination pointer and length.
    fn target(&mut self) -> (*mut u8, usize);
    /// The registration covering the destination, if any.
    fn memh(&self) -> Option<ucp_mem_h> {
        None
    }
}

struct ReqState<B> {
    /// The UCX call that posted it (named in its error).
    op: &'static str,
    done: AtomicBool,
    status: AtomicI8,
    target: Mutex<Option<B>>,
}

impl<B> ReqState<B> {
    fn complete(&self, status: ucs_status_t) {
        self.status.store(status.0, Ordering::Relaxed);
        self.done.store(true, Ordering::Release);
    }
}

/// An in-flight (or finished) get into a `B`.
pub struct Request<B> {
    state: Arc<ReqState<B>>,
    /// The UCX request handle; null if the operation completed immediately.
    /// Only dereferenced (cancel) under the worker guard while not `done`.
    raw: *mut c_void,
}

// SAFETY: `raw` is only handed to UCX under a `WorkerGuard` (serialized) and
// only while the request is not complete (the callback, which frees it, runs
// under the same guard); the rest is Arc/atomics/mutex.
unsafe impl<B: Send> Send for Request<B> {}

impl<B> std::fmt::Debug for Request<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request(done: {})", self.is_done())
    }
}

unsafe extern "C" fn on_complete<B: Send + 'static>(
    request: *mut c_void,
    status: ucs_status_t,
    user_data: *mut c_void,
) {
    ffi_guard("rma completion", || {
        // SAFETY: `user_data` is the reference leaked by `Endpoint::get` for
        // this callback, which UCX invokes exactly once per request.
        let state = unsafe { Arc::from_raw(user_data.cast_const().cast::<ReqState<B>>()) };
        state.complete(status);
        // SAFETY: the request handle is released exactly once, here, after completion.
        unsafe { ucp_request_free(request) };
        // Dropping `state` may drop the target if the waiter gave up: UCX is
        // done with it, so that is the moment it may be reused.
        drop(state);
    });
}

/// A source for a one-sided put.
///
/// # Safety
/// `source` must return a pointer to `len` readable bytes that stay valid, at
/// the same address and unmodified, for as long as the value lives, even when
/// the value is moved.
pub unsafe trait RmaSource: Send + 'static {
    /// Source pointer and length.
    fn source(&self) -> (*const u8, usize);
}

// SAFETY: a `Bytes` handle keeps its (immutable) storage alive and in place.
unsafe impl RmaSource for bytes::Bytes {
    fn source(&self) -> (*const u8, usize) {
        (self.as_ptr(), self.len())
    }
}

/// Post an operation whose completion callback co-owns `keep`.
fn post<B: Send + 'static>(
    op: &'static str,
    keep: B,
    memh: Option<ucp_mem_h>,
    call: impl FnOnce(&ucp_request_param_t) -> ucs_status_ptr_t,
) -> Result<Request<B>> {
    let state = Arc::new(ReqState {
        op,
        done: AtomicBool::new(false),
        status: AtomicI8::new(ucs_status_t::UCS_INPROGRESS.0),
        target: Mutex::new(Some(keep)),
    });
    let user_data = Arc::into_raw(state.clone());
    let mut param = ucp_request_param_t {
        op_attr_mask: (ucp_op_attr_t::UCP_OP_ATTR_FIELD_CALLBACK
            | ucp_op_attr_t::UCP_OP_ATTR_FIELD_USER_DATA)
            .0,
        cb: ucp_request_param_t__bindgen_ty_1 {
            send: Some(on_complete::<B>),
        },
        user_data: user_data.cast_mut().cast(),
        ..Default::default()
    };
    if let Some(m) = memh {
        // SAFETY: `param` is a valid struct; `m` covers the buffer (trait contracts).
        unsafe { ps_request_param_set_memh(&mut param, m) };
    }
    let ret = call(&param);
    // SAFETY: pure inspection of the returned pointer value.
    let status = unsafe { ps_ptr_status(ret) };
    if status == ucs_status_t::UCS_INPROGRESS {
        return Ok(Request { state, raw: ret });
    }
    // Completed (or failed) at once: the callback will not run, take its reference back.
    // SAFETY: `user_data` came from Arc::into_raw above and is reclaimed once.
    drop(unsafe { Arc::from_raw(user_data) });
    state.complete(status);
    if status == ucs_status_t::UCS_OK {
        Ok(Request {
            state,
            raw: std::ptr::null_mut(),
        })
    } else {
        Err(status_error(op, status))
    }
}

impl Endpoint {
    fn check_rkey(
        &self,
        g: &WorkerGuard<'_>,
        rkey: &RemoteKey,
        op: &'static str,
    ) -> Result<ucp_ep_h> {
        let ep = self.raw(g, op)?;
        if !std::ptr::eq(rkey.endpoint().raw(g, op)?, ep) {
            return Err(Error::permanent(
                "ucx",
                op,
                "remote key belongs to another endpoint",
            ));
        }
        Ok(ep)
    }

    /// Post a one-sided get of `target`'s length from `remote_addr` (covered
    /// by `rkey`) into `target`. The target comes back from [`Request::take`].
    pub fn get<B: RmaTarget>(
        &self,
        g: &WorkerGuard<'_>,
        rkey: &RemoteKey,
        remote_addr: u64,
        mut target: B,
    ) -> Result<Request<B>> {
        let ep = self.check_rkey(g, rkey, "ucp_get_nbx")?;
        let (ptr, len) = target.target();
        let memh = target.memh();
        post("ucp_get_nbx", target, memh, |param| {
            // SAFETY: serialized access (guard); `ptr..ptr+len` stays valid until
            // the operation completes, because the buffer lives in the request
            // state, which the callback co-owns; `rkey` belongs to this endpoint.
            unsafe { ucp_get_nbx(ep, ptr.cast(), len, remote_addr, rkey.raw(), param) }
        })
    }

    /// Post a one-sided put of `source` to `remote_addr` (covered by `rkey`).
    /// Completion is local (the source may be reused); use
    /// [`Endpoint::flush`] for remote completion.
    pub fn put<S: RmaSource>(
        &self,
        g: &WorkerGuard<'_>,
        rkey: &RemoteKey,
        remote_addr: u64,
        source: S,
    ) -> Result<Request<S>> {
        let ep = self.check_rkey(g, rkey, "ucp_put_nbx")?;
        let (ptr, len) = source.source();
        post("ucp_put_nbx", source, None, |param| {
            // SAFETY: serialized access; the source stays alive and unmodified
            // in the request state until completion; `rkey` belongs to this endpoint.
            unsafe { ucp_put_nbx(ep, ptr.cast(), len, remote_addr, rkey.raw(), param) }
        })
    }

    /// Complete every operation posted on this endpoint at the remote side.
    pub fn flush(&self, g: &WorkerGuard<'_>) -> Result<Request<()>> {
        let ep = self.raw(g, "ucp_ep_flush_nbx")?;
        post("ucp_ep_flush_nbx", (), None, |param| {
            // SAFETY: serialized access; the endpoint is alive.
            unsafe { ucp_ep_flush_nbx(ep, param) }
        })
    }
}

impl<B> Request<B> {
    /// Whether UCX reported completion (success or failure).
    pub fn is_done(&self) -> bool {
        self.state.done.load(Ordering::Acquire)
    }

    /// The buffer, once complete: `Ok` with the data in place, or the error.
    /// `None` while still in flight.
    pub fn take(&self) -> Option<Result<B>> {
        if !self.is_done() {
            return None;
        }
        let status = ucs_status_t(self.state.status.load(Ordering::Relaxed));
        if status != ucs_status_t::UCS_OK {
            return Some(Err(status_error(self.state.op, status)));
        }
        self.state.target.lock().take().map(Ok).or_else(|| {
            Some(Err(Error::permanent(
                "ucx",
                self.state.op,
                "result already taken",
            )))
        })
    }

    /// Ask UCX to cancel an in-flight request; it then completes (with
    /// `UCS_ERR_CANCELED` or success) during later progress. The buffer is
    /// released only then.
    pub fn cancel(&self, g: &WorkerGuard<'_>) {
        if !self.raw.is_null() && !self.is_done() {
            // SAFETY: not done, so the callback has not freed `raw` yet, and it
            // cannot run concurrently: callbacks run inside progress, which
            // needs the guard we hold.
            unsafe { ucp_request_cancel(g.raw(), self.raw) };
        }
    }
}

// SAFETY: a boxed slice's heap storage never moves or changes length while
// the box lives, and the box is owned (no other access) by the request.
unsafe impl RmaTarget for Box<[u8]> {
    fn target(&mut self) -> (*mut u8, usize) {
        (self.as_mut_ptr(), self.len())
    }
}
