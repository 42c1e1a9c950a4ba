//! The completion header every posted operation's state starts with: what
//! the completion-queue reader (`endpoint.rs`) records a completion into
//! without knowing the operation's buffer type (the states are `op.rs`'s).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use libfabric_sys::fi_context2;
use parking_lot::Mutex;

use super::FiError;

/// The part of an operation's state that the completion path sees without
/// knowing its buffer type. `#[repr(C)]` with the provider's context first:
/// the context pointer is the header's (and the state's) address.
#[repr(C)]
pub(crate) struct Header {
    pub(super) ctx: UnsafeCell<fi_context2>,
    pub(super) done: AtomicBool,
    pub(super) err: AtomicI32,
    pub(super) detail: Mutex<Option<String>>,
    pub(super) op: &'static str,
    /// Drops the reference leaked for the completion (knows the state's type).
    pub(super) release: unsafe fn(*const Header),
}

impl Header {
    /// Record a completion and drop the completion's reference.
    ///
    /// # Safety
    /// `p` must be the context of a posted operation whose completion has
    /// not been reported before (called once per operation, under the lock).
    pub(crate) unsafe fn complete(p: *const Header, r: std::result::Result<(), FiError>) {
        // SAFETY: the leaked reference keeps the state alive until `release`.
        let h = unsafe { &*p };
        if let Err(e) = r {
            h.err.store(e.code.max(1), Ordering::Relaxed);
            *h.detail.lock() = e.detail;
        }
        h.done.store(true, Ordering::Release);
        // SAFETY: the one release of the completion's reference.
        unsafe { (h.release)(p) };
    }
}
