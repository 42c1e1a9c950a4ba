//! A small safe layer over UCP: RAII handles that own their raw pointer and an
//! `Arc` to their parent, one status-conversion helper, panic-free callbacks.
//!
//! Threading model: a [`Context`] is shared freely (created with
//! `mt_workers_shared`, so memory registration is thread safe). A [`Worker`] is
//! created in `UCS_THREAD_MODE_SERIALIZED` and every call that touches it goes
//! through a [`WorkerGuard`] (a mutex), so callers prove serialized access at
//! the type level. Handles whose destruction needs the worker ([`Endpoint`],
//! [`RemoteKey`]) queue themselves for destruction on drop and are destroyed,
//! in order, the next time the worker is locked: dropping one while holding a
//! guard can therefore never deadlock.

mod context;
mod memory;
mod request;
mod worker;

pub use context::{Context, Features};
pub use memory::MemRegion;
pub use request::{Request, RmaSource, RmaTarget};
pub use worker::{Endpoint, RemoteKey, Worker, WorkerGuard};

use std::ffi::CStr;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use proxy_core::Error;
use ucx_sys::ucs_status_t;

/// A UCX status code with its message: the `source` of connector errors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UcsError(pub ucs_status_t);

impl UcsError {
    /// The raw status value.
    pub fn raw(self) -> i8 {
        self.0.0
    }

    /// Whether retrying later may help. A peer that dies during an
    /// operation is temporary (it can be restarted), whatever status the UCX
    /// version reports for it: TCP reports `CONNECTION_RESET` or
    /// `ENDPOINT_TIMEOUT`, and the shared-memory `cma` transport of newer
    /// UCX (1.22) fails a get from a killed process with `IO_ERROR` (its
    /// `process_vm_readv` fails), where 1.13 reports `CONNECTION_RESET`.
    pub fn is_temporary(self) -> bool {
        matches!(
            self.0,
            ucs_status_t::UCS_ERR_IO_ERROR
                | ucs_status_t::UCS_ERR_NO_RESOURCE
                | ucs_status_t::UCS_ERR_BUSY
                | ucs_status_t::UCS_ERR_TIMED_OUT
                | ucs_status_t::UCS_ERR_ENDPOINT_TIMEOUT
                | ucs_status_t::UCS_ERR_CONNECTION_RESET
                | ucs_status_t::UCS_ERR_NOT_CONNECTED
                | ucs_status_t::UCS_ERR_UNREACHABLE
                | ucs_status_t::UCS_ERR_REJECTED
                | ucs_status_t::UCS_ERR_CANCELED
        )
    }
}

impl fmt::Display for UcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: ucs_status_string returns a pointer to a static NUL-terminated
        // string for every value (an "unknown" string for unnamed ones).
        let msg = unsafe { CStr::from_ptr(ucx_sys::ucs_status_string(self.0)) };
        write!(f, "{} (UCX status {})", msg.to_string_lossy(), self.0.0)
    }
}

impl fmt::Debug for UcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for UcsError {}

/// The one conversion from a UCX status to the project's error type.
pub fn status_error(op: &'static str, status: ucs_status_t) -> Error {
    let e = UcsError(status);
    Error::connector("ucx", op, e.is_temporary(), e)
}

/// `Ok(())` for `UCS_OK`, the converted error otherwise.
pub fn check(op: &'static str, status: ucs_status_t) -> proxy_core::Result<()> {
    if status == ucs_status_t::UCS_OK {
        Ok(())
    } else {
        Err(status_error(op, status))
    }
}

/// Panics caught inside `extern "C"` callbacks (they are never unwound into UCX).
static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many callback panics were caught and swallowed so far (should be 0).
pub fn callback_panics() -> u64 {
    CALLBACK_PANICS.load(Ordering::Relaxed)
}

/// Run a callback body without letting a panic unwind into C.
pub(crate) fn ffi_guard(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
        eprintln!("proxystore-ucx: panic caught in UCX callback `{what}` (not propagated into C)");
    }
}
