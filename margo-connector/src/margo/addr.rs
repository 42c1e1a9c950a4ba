//! [`Addr`]: a looked-up Mercury address (`hg_addr_t`).

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use margo_sys::hg_addr_t;
use proxy_core::{Error, Result};

use super::instance::Instance;
use super::{KIND, check};

pub(crate) struct AddrInner {
    pub(crate) failed: AtomicBool,
    inst: Arc<Instance>,
    addr: hg_addr_t,
    name: String,
}

// SAFETY: a Mercury address may be used from any thread; it is freed once,
// on drop.
unsafe impl Send for AddrInner {}
// SAFETY: as above (Mercury addresses are reference-counted internally).
unsafe impl Sync for AddrInner {}

impl AddrInner {
    pub(crate) fn lookup(inst: &Arc<Instance>, name: &str) -> Result<Arc<AddrInner>> {
        let c = CString::new(name).map_err(|_| {
            Error::permanent(KIND, "margo_addr_lookup", "address contains a NUL byte")
        })?;
        let mut addr: hg_addr_t = std::ptr::null_mut();
        // SAFETY: valid instance, NUL-terminated name, out-pointer.
        let r = unsafe { (inst.api().margo_addr_lookup)(inst.mid(), c.as_ptr(), &mut addr) };
        check("margo_addr_lookup", r).map_err(|e| {
            Error::connector(
                KIND,
                "connect",
                e.is_temporary(),
                format!("cannot look up the server's Mercury address {name:?}: {e}"),
            )
        })?;
        Ok(Arc::new(AddrInner {
            inst: inst.clone(),
            addr,
            name: name.to_string(),
            failed: AtomicBool::new(false),
        }))
    }
}

impl Drop for AddrInner {
    fn drop(&mut self) {
        // SAFETY: the address came from margo_addr_lookup on this instance
        // (alive: we hold it) and is freed exactly once.
        unsafe { (self.inst.api().margo_addr_free)(self.inst.mid(), self.addr) };
    }
}

/// A peer's address on one instance (shared with every other holder of the
/// same name on that instance), freed with the last holder.
#[derive(Clone)]
pub struct Addr {
    inner: Arc<AddrInner>,
}

impl std::fmt::Debug for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Addr({})", self.inner.name)
    }
}

impl Addr {
    pub(crate) fn from_inner(inner: Arc<AddrInner>) -> Addr {
        Addr { inner }
    }

    /// The name it was looked up by.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The instance it belongs to.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.inner.inst
    }

    pub(crate) fn raw(&self) -> hg_addr_t {
        self.inner.addr
    }

    /// Whether a transfer with this peer failed in a way that says the peer
    /// is gone.
    pub fn failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// Mark the peer failed: the instance's cache no longer hands it out.
    /// (Only an atomic store: it runs in completion callbacks.)
    pub(crate) fn set_failed(&self) {
        self.inner.failed.store(true, Ordering::Release);
    }
}
