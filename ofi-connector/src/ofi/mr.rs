//! Memory registrations (`fi_mr_reg` .. `fi_close`).

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use libfabric_sys::*;
use proxy_core::Result;

use super::{Domain, DomainGuard, Endpoint, check};

/// A registration of memory someone else owns, closed on drop (deferred to
/// the next holder of the domain lock if it is taken). With `FI_MR_ENDPOINT`
/// it is bound to, and keeps alive, an endpoint.
pub struct Mr {
    raw: *mut fid_mr,
    key: u64,
    desc: *mut c_void,
    domain: Arc<Domain>,
    ep: Option<Arc<Endpoint>>,
}

impl std::fmt::Debug for Mr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mr(key {:#x})", self.key)
    }
}

// SAFETY: the handle is only used under the domain lock (registration,
// close) or read as plain values (key, desc); see `Domain`.
unsafe impl Send for Mr {}
// SAFETY: see `Send`.
unsafe impl Sync for Mr {}

impl Mr {
    /// Register `[addr, addr + len)` for `access` (`FI_READ`, `FI_WRITE`
    /// for local buffers; `FI_REMOTE_READ`, `FI_REMOTE_WRITE` for remote
    /// access). `ep`: the endpoint to bind to when the provider wants
    /// `FI_MR_ENDPOINT` (required then).
    ///
    /// # Safety
    /// The memory must stay mapped (and, with `FI_MR_ALLOCATED`, backed)
    /// until the registration is dropped.
    pub unsafe fn register(
        g: &DomainGuard<'_>,
        domain: &Arc<Domain>,
        ep: Option<&Arc<Endpoint>>,
        addr: *const u8,
        len: usize,
        access: u64,
    ) -> Result<Mr> {
        debug_assert!(std::ptr::eq(g.domain(), &**domain));
        let mode = domain.mr_mode();
        let requested_key = if mode.prov_key() {
            0
        } else {
            domain.next_key()
        };
        let mut raw: *mut fid_mr = ptr::null_mut();
        // SAFETY: lock held (g); the caller keeps the memory mapped; offset 0
        // so that without FI_MR_VIRT_ADDR remote addresses are offsets.
        check("fi_mr_reg", unsafe {
            fi_mr_reg(
                domain.raw(),
                addr.cast(),
                len,
                access,
                0,
                requested_key,
                0,
                &mut raw,
                ptr::null_mut(),
            )
        })?;
        let mut mr = Mr {
            raw,
            key: 0,
            desc: ptr::null_mut(),
            domain: domain.clone(),
            ep: None,
        };
        if mode.endpoint() {
            let Some(ep) = ep else {
                return Err(proxy_core::Error::connector(
                    super::KIND,
                    "fi_mr_bind",
                    false,
                    "the provider binds registrations to an endpoint (FI_MR_ENDPOINT) but none was given",
                ));
            };
            // SAFETY: lock held; mr and ep belong to this domain and are alive.
            check("fi_mr_bind", unsafe { fi_mr_bind(raw, ep.fid(), 0) })?;
            // SAFETY: as above; enable after bind, as FI_MR_ENDPOINT requires.
            check("fi_mr_enable", unsafe { fi_mr_enable(raw) })?;
            mr.ep = Some(ep.clone());
        }
        // SAFETY: the registration is alive (and enabled if needed).
        mr.key = unsafe { fi_mr_key(raw) };
        // SAFETY: as above.
        mr.desc = unsafe { fi_mr_desc(raw) };
        if mr.key == u64::MAX {
            // FI_KEY_NOTAVAIL
            return Err(proxy_core::Error::connector(
                super::KIND,
                "fi_mr_key",
                false,
                "the provider needs raw keys (FI_MR_RAW), which this connector does not support",
            ));
        }
        Ok(mr)
    }

    /// The remote access key.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The local descriptor (`fi_mr_desc`) passed with operations on it.
    pub fn desc(&self) -> *mut c_void {
        self.desc
    }
}

impl Drop for Mr {
    fn drop(&mut self) {
        // The bound endpoint must outlive the close: it rides along.
        let keep = Box::new(self.ep.take());
        // SAFETY: the fid is alive and closed once (now or by the next lock holder).
        self.domain.close(unsafe { &mut (*self.raw).fid }, keep);
    }
}
