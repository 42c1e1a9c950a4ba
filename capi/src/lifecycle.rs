//! The library's life in a process: optional [`ps_init`], [`ps_finalize`]
//! (closes everything; every later call is `PS_ERR_CLOSED`), and the version.

use std::sync::atomic::{AtomicU8, Ordering};

use proxy_core::stores;

use crate::{BUFFERS, Res, STORES, fail, ps_status};

/// Major version of this header (`PS_VERSION_MAJOR.PS_VERSION_MINOR.PS_VERSION_PATCH`
/// is what [`ps_version`](crate::ps_version) returns for the matching library).
pub const PS_VERSION_MAJOR: u32 = 0;
/// Minor version of this header. Before 1.0 a new minor version may change
/// the ABI: the shared library's SONAME is `libproxystore.so.0.MINOR`.
pub const PS_VERSION_MINOR: u32 = 2;
/// Patch version of this header.
pub const PS_VERSION_PATCH: u32 = 0;

const OPEN: u8 = 0;
const FINALIZED: u8 = 1;
static STATE: AtomicU8 = AtomicU8::new(OPEN);

/// `PS_ERR_CLOSED` once [`ps_finalize`] ran.
pub(crate) fn check_open() -> Res<()> {
    if STATE.load(Ordering::Acquire) == FINALIZED {
        return Err(fail(
            ps_status::PS_ERR_CLOSED,
            "the library was finalized (ps_finalize): no call but ps_last_error, ps_status_name, ps_version and ps_live_handles works after it",
        ));
    }
    Ok(())
}

/// Initialize the library (optional: the first call of any function does it).
/// Makes every linked connector kind and URL scheme known. Idempotent;
/// `PS_ERR_CLOSED` after [`ps_finalize`] (the library cannot be restarted in
/// a process, as MPI cannot).
#[unsafe(no_mangle)]
pub extern "C" fn ps_init() -> ps_status {
    crate::call(|| Ok(()))
}

/// Close every store (those opened by handle and those opened implicitly by
/// [`ps_proxy_resolve`](crate::ps_proxy_resolve)), release every buffer and
/// the connectors' resources (UCX contexts, connections). Every later call is
/// `PS_ERR_CLOSED`; calling it again is a no-op. Do not call it while other
/// threads are inside the library, and do not read a buffer's `data` after it.
/// Returns the first error of closing a store, after closing all of them.
#[unsafe(no_mangle)]
pub extern "C" fn ps_finalize() -> ps_status {
    crate::call_any(|| {
        if STATE.swap(FINALIZED, Ordering::AcqRel) == FINALIZED {
            return Ok(());
        }
        let handles: Vec<_> = STORES.lock().drain().map(|(_, s)| s).collect();
        BUFFERS.lock().clear();
        let mut first = stores::close_all();
        for s in handles {
            let closed = s.close();
            if first.is_ok() {
                first = closed;
            }
        }
        Ok(first?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_the_crate_version() {
        let v = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(PS_VERSION_MAJOR, v(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(PS_VERSION_MINOR, v(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(PS_VERSION_PATCH, v(env!("CARGO_PKG_VERSION_PATCH")));
    }
}
