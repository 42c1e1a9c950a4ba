//! A small safe layer over Margo (`margo-sys`): RAII handles that own their
//! native object and an `Arc` to the instance they belong to, one error
//! conversion, completion through Margo's callbacks.
//!
//! | handle | Margo / Mercury | keeps alive |
//! |---|---|---|
//! | [`Instance`] | `margo_init_ext` .. `margo_finalize`, with its progress thread | |
//! | [`Addr`] | `margo_addr_lookup` / `margo_addr_self` .. `margo_addr_free` (cached per instance) | the instance |
//! | [`Bulk`] | `margo_bulk_create` / `margo_bulk_deserialize` .. `margo_bulk_free` | the instance, and for a created handle the memory it covers (the caller's promise) |
//! | [`Transfer`] | one `margo_bulk_ctransfer_timed`, its buffer and handles | the buffer and both handles, until Margo calls back |
//!
//! Threading model: every instance has a progress thread of its own
//! (`use_progress_thread`), which runs Mercury's progress and triggers the
//! completion callbacks; any thread may post transfers. Argobots wants
//! `ABT_init` and `ABT_finalize` on one thread (its primary execution
//! stream), so `margo_init_ext` and `margo_finalize` always run on one
//! service thread of this crate ([`Instance`]).
//!
//! Rust code called from C: only the completion callback of a transfer
//! ([`Transfer`]), which stores the status in atomics, wakes the waiters and
//! drops its reference, inside `catch_unwind`: no panic unwinds into C.

mod addr;
mod bulk;
mod instance;
mod op;

pub use addr::Addr;
pub use bulk::{Bulk, BulkAccess};
pub use instance::{Instance, Mode};
pub use op::{BulkBuf, Direction, Transfer};

use std::fmt;

use margo_sys::{hg, hg_return_t};
use proxy_core::Error;

/// Connector kind named in errors.
pub(crate) const KIND: &str = "margo";

/// A Mercury return code (`hg_return_t`) and what failed.
#[derive(Clone, PartialEq, Eq)]
pub struct HgError {
    /// The `hg_return_t` value.
    pub code: hg_return_t,
}

impl HgError {
    /// The name Mercury gives the code (`HG_TIMEOUT`), or the number.
    pub fn name(&self) -> String {
        margo_sys::hg::NAMES
            .get(self.code as usize)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("hg_return_t {}", self.code))
    }

    /// Whether retrying later (or against a restarted server) may help: the
    /// peer went away, was busy, or the transfer timed out or was canceled.
    pub fn is_temporary(&self) -> bool {
        self.is_peer_failure() || [hg::AGAIN, hg::TIMEOUT, hg::CANCELED].contains(&self.code)
    }

    /// Whether the error says the peer (not this operation) is gone: a
    /// failed read of a dead process (`na+sm`: `process_vm_readv` fails with
    /// `EFAULT`, or with `ESRCH`, which `na+sm` does not map and reports as
    /// `HG_PROTOCOL_ERROR`: seen when a pull races a `kill -9` of the server),
    /// a reset or refused connection (`ofi+tcp`).
    pub fn is_peer_failure(&self) -> bool {
        [
            hg::HOSTUNREACH,
            hg::IO_ERROR,
            hg::NA_ERROR,
            hg::NOENTRY,
            hg::FAULT,
            hg::PROTOCOL_ERROR,
        ]
        .contains(&self.code)
    }
}

impl fmt::Display for HgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Mercury error {})", self.name(), self.code)
    }
}

impl fmt::Debug for HgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for HgError {}

/// The one conversion from a Mercury error to the project's error type.
pub fn hg_error(op: &'static str, code: hg_return_t) -> Error {
    let e = HgError { code };
    Error::connector(KIND, op, e.is_temporary(), e)
}

/// `Ok(())` for `HG_SUCCESS`, the converted error otherwise.
pub fn check(op: &'static str, code: hg_return_t) -> proxy_core::Result<()> {
    if code == margo_sys::hg::SUCCESS {
        Ok(())
    } else {
        Err(hg_error(op, code))
    }
}

/// Margo itself: loaded, or the error that says how to install it.
pub fn api() -> proxy_core::Result<&'static margo_sys::Api> {
    margo_sys::api().map_err(|e| Error::permanent(KIND, "load Margo", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_code() {
        let e = HgError {
            code: margo_sys::hg::TIMEOUT,
        };
        assert!(e.is_temporary() && !e.is_peer_failure());
        assert_eq!(e.to_string(), "HG_TIMEOUT (Mercury error 20)");
        let p = HgError {
            code: margo_sys::hg::PERMISSION,
        };
        assert!(!p.is_temporary());
        assert!(
            HgError { code: 999 }
                .to_string()
                .contains("hg_return_t 999")
        );
        let err = hg_error("get", margo_sys::hg::NA_ERROR);
        assert!(err.is_temporary(), "{err}");
    }

    /// A pull of a dead process over `na+sm` (`ESRCH`) comes back as
    /// `HG_PROTOCOL_ERROR`: the peer is gone, which is temporary (the
    /// server can be restarted) and marks the address failed.
    #[test]
    fn dead_peer_protocol_error_is_temporary() {
        let e = HgError {
            code: margo_sys::hg::PROTOCOL_ERROR,
        };
        assert!(e.is_temporary() && e.is_peer_failure(), "{e}");
        assert!(hg_error("get", margo_sys::hg::PROTOCOL_ERROR).is_temporary());
        for permanent in [margo_sys::hg::PERMISSION, margo_sys::hg::INVALID_ARG] {
            assert!(!(HgError { code: permanent }).is_temporary());
        }
    }
}
