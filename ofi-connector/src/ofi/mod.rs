//! A small safe layer over libfabric: RAII handles that own their `fid` and
//! an `Arc` to their parents, one error conversion, completion progress.
//!
//! | handle | libfabric | keeps alive |
//! |---|---|---|
//! | [`Info`] | `fi_getinfo` .. `fi_freeinfo` | |
//! | [`Domain`] | `fi_fabric` + `fi_domain` | its `fi_info` |
//! | [`Endpoint`] | `FI_EP_RDM` endpoint with its AV and CQ | the domain |
//! | [`Mr`] | `fi_mr_reg` (+ `fi_mr_bind`/`fi_mr_enable` for `FI_MR_ENDPOINT`) | the domain, the endpoint it is bound to |
//! | [`Op`] | one posted `fi_read`/`fi_write`, its context and buffer | the buffer, until the CQ reports it |
//!
//! Threading model: the domain is opened with `FI_THREAD_DOMAIN`, so every
//! call on it or its children is serialized through one lock
//! ([`Domain::lock`], a [`DomainGuard`]). Handles dropped while the lock is
//! held elsewhere (e.g. a receive buffer's registration released by a
//! completion) queue their `fi_close` and are closed, in order, by the next
//! holder of the lock: a drop can never deadlock.
//!
//! No Rust code is ever called from C here (completions are read with
//! `fi_cq_read`, never delivered through callbacks), so no panic can unwind
//! across the FFI boundary.

mod completion;
mod domain;
mod endpoint;
mod info;
mod mr;
mod op;

pub use domain::{Domain, DomainGuard};
pub use endpoint::{Endpoint, PeerAddr};
pub use info::{Info, InfoQuery, MrMode};
pub use mr::Mr;
pub use op::{Op, RmaSource, RmaTarget};

use std::ffi::CStr;
use std::fmt;

use proxy_core::Error;

/// A libfabric error number (positive, as in `fi_errno.h`) and what failed.
#[derive(Clone, PartialEq, Eq)]
pub struct FiError {
    /// `FI_E*` / errno value, positive.
    pub code: i32,
    /// The provider's own explanation (`fi_cq_strerror`), if any.
    pub detail: Option<String>,
}

impl FiError {
    /// From a negative return value of a libfabric call.
    pub fn from_ret(ret: isize) -> FiError {
        FiError {
            code: i32::try_from(ret.unsigned_abs()).unwrap_or(i32::MAX),
            detail: None,
        }
    }

    /// Whether retrying later (or against a restarted server) may help: the
    /// peer went away or was busy, or the operation was canceled.
    pub fn is_temporary(&self) -> bool {
        let c = self.code as u32;
        [
            libfabric_sys::FI_EAGAIN,
            libfabric_sys::FI_ECANCELED,
            libfabric_sys::FI_ETIMEDOUT,
            libfabric_sys::FI_ECONNRESET,
            libfabric_sys::FI_ECONNREFUSED,
            libfabric_sys::FI_ECONNABORTED,
            libfabric_sys::FI_ENOTCONN,
            libfabric_sys::FI_EHOSTUNREACH,
            libfabric_sys::FI_ENETUNREACH,
            libc::EPIPE as u32,
            libfabric_sys::FI_EIO,
            libc::ESRCH as u32,
        ]
        .contains(&c)
    }

    /// Whether the error says the peer (not this operation) is gone.
    pub fn is_peer_failure(&self) -> bool {
        let c = self.code as u32;
        [
            libfabric_sys::FI_ECONNRESET,
            libfabric_sys::FI_ECONNREFUSED,
            libfabric_sys::FI_ECONNABORTED,
            libfabric_sys::FI_ENOTCONN,
            libfabric_sys::FI_EHOSTUNREACH,
            libfabric_sys::FI_ENETUNREACH,
            libc::EPIPE as u32,
            libfabric_sys::FI_EIO,
            libc::ESRCH as u32,
        ]
        .contains(&c)
    }
}

impl fmt::Display for FiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: fi_strerror returns a pointer to a static NUL-terminated
        // string for every value (a generic one for unknown numbers).
        let msg = unsafe { CStr::from_ptr(libfabric_sys::fi_strerror(self.code)) };
        write!(
            f,
            "{} (libfabric error {})",
            msg.to_string_lossy(),
            self.code
        )?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for FiError {}

/// Connector kind named in errors.
pub(crate) const KIND: &str = "ofi";

/// The one conversion from a libfabric error to the project's error type.
pub fn fi_error(op: &'static str, e: FiError) -> Error {
    let temporary = e.is_temporary();
    Error::connector(KIND, op, temporary, e)
}

/// `Ok(ret)` for a non-negative return value, the converted error otherwise.
pub fn check(op: &'static str, ret: impl Into<i64>) -> proxy_core::Result<i64> {
    let ret = ret.into();
    if ret >= 0 {
        Ok(ret)
    } else {
        Err(fi_error(op, FiError::from_ret(ret as isize)))
    }
}
