//! Memory registrations (`fi_mr_reg` .. `fi_close`).

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use libfabric_sys::*;
use proxy_core::Result;

use super::{Domain, DomainGuard, Endpoint, check};

/// Random keys drawn again after `-FI_ENOKEY` (a key in use) before giving
/// up: with 64 (or 32) random bits a second collision in a row means
/// something else is wrong.
const KEY_COLLISIONS: u32 = 8;

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
        let mut raw: *mut fid_mr = ptr::null_mut();
        let mut collisions = 0;
        loop {
            // FI_MR_PROV_KEY: the provider picks (see the crate README for
            // which providers pick unguessable keys); else a random key.
            let requested_key = if mode.prov_key() {
                0
            } else {
                domain.random_key()?
            };
            // SAFETY: lock held (g); the caller keeps the memory mapped;
            // offset 0 so that without FI_MR_VIRT_ADDR remote addresses are
            // offsets.
            let r = unsafe {
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
            };
            // A random key already in use in this domain: draw another.
            if r == -(FI_ENOKEY as i32) && !mode.prov_key() && collisions < KEY_COLLISIONS {
                collisions += 1;
                continue;
            }
            check("fi_mr_reg", r)?;
            break;
        }
        let mut mr = Mr {
            raw,
            key: 0,
            desc: ptr::null_mut(),
            domain: domain.clone(),
            ep: None,
        };
        if mode.endpoint() {
            let Some(ep) = ep else {
                return Err(proxy_core::Error::permanent(
                    super::KIND,
                    "fi_mr_bind",
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
        if mr.key == super::domain::FI_KEY_NOTAVAIL {
            return Err(proxy_core::Error::permanent(
                super::KIND,
                "fi_mr_key",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofi::InfoQuery;
    use crate::ofi::domain::key_mask;

    /// Requested keys are random over the provider's whole key space: 64
    /// registrations on `shm` and on `tcp;ofi_rxm` (both take requested
    /// keys, 8 bytes wide in libfabric 1.17) give 64 distinct keys, not a
    /// run, with high bits set (sequential keys were 1, 2, 3, ...).
    #[test]
    fn requested_keys_are_random_64_bit() {
        for provider in ["shm", "tcp;ofi_rxm"] {
            let domain = Arc::new(
                Domain::open(&InfoQuery {
                    provider: Some(provider.into()),
                    domain: None,
                })
                .expect("libfabric provider"),
            );
            assert!(
                !domain.mr_mode().prov_key(),
                "{provider} takes requested keys"
            );
            assert_eq!(domain.key_bits(), 64, "{provider}: mr_key_size 8");
            let ep = Endpoint::open(&domain).unwrap();
            let mem = vec![0u8; 4096];
            let g = domain.lock();
            let mrs: Vec<Mr> = (0..64)
                .map(|_| {
                    // SAFETY: `mem` outlives the registrations (dropped first).
                    unsafe {
                        Mr::register(
                            &g,
                            &domain,
                            Some(&ep),
                            mem.as_ptr(),
                            mem.len(),
                            libfabric_sys::FI_REMOTE_READ as u64,
                        )
                    }
                    .unwrap()
                })
                .collect();
            let mut keys: Vec<u64> = mrs.iter().map(Mr::key).collect();
            assert!(
                keys.iter().filter(|&&k| k >> 32 != 0).count() > 32,
                "{provider}: keys use the high bits: {keys:x?}"
            );
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), 64, "{provider}: distinct keys");
            assert!(
                keys.windows(2).all(|w| w[1] - w[0] > 1),
                "{provider}: no two keys in a row: {keys:x?}"
            );
            drop(mrs);
            drop(g);
        }
    }

    #[test]
    fn key_space_follows_mr_key_size() {
        assert_eq!(key_mask(4), 0xffff_ffff);
        assert_eq!(key_mask(2), 0xffff);
        assert_eq!(key_mask(8), u64::MAX);
        assert_eq!(key_mask(0), u64::MAX);
        assert_eq!(key_mask(16), u64::MAX);
    }
}
