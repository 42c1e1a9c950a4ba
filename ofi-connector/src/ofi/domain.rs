//! Fabric and domain (`fi_fabric`, `fi_domain`), the domain lock, deferred closes.

use std::any::Any;
use std::ptr;

use libfabric_sys::*;
use parking_lot::{Mutex, MutexGuard};
use proxy_core::Result;

use super::{Info, InfoQuery, MrMode, check};

/// A `fid` whose close waits for the lock, with the parents it needs alive.
struct Deferred {
    fid: *mut fid,
    _keep: Box<dyn Any + Send + Sync>,
}

// SAFETY: the fid is only closed under the domain lock; `_keep` is Send.
unsafe impl Send for Deferred {}

/// A fabric and one domain on it, with the lock serializing every call on
/// them and their children (`FI_THREAD_DOMAIN`).
pub struct Domain {
    fabric: *mut fid_fabric,
    raw: *mut fid_domain,
    info: Info,
    mr_mode: MrMode,
    lock: Mutex<()>,
    deferred: Mutex<Vec<Deferred>>,
    /// The bits of a requested key the provider keeps (`mr_key_size`).
    key_mask: u64,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Domain({}, mr_mode {:#x})",
            self.info.describe(),
            self.mr_mode.0
        )
    }
}

// SAFETY: every call on the raw handles goes through `lock` (FI_THREAD_DOMAIN
// asks the application to serialize access to the domain and its objects),
// except fi_close in Drop, which runs when no one else holds the domain.
unsafe impl Send for Domain {}
// SAFETY: see `Send`.
unsafe impl Sync for Domain {}

/// Proof that this thread holds the domain lock.
pub struct DomainGuard<'a> {
    _g: MutexGuard<'a, ()>,
    domain: &'a Domain,
}

impl std::fmt::Debug for DomainGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DomainGuard({:?})", self.domain)
    }
}

impl DomainGuard<'_> {
    /// The domain this guard locks.
    pub fn domain(&self) -> &Domain {
        self.domain
    }
}

impl Domain {
    /// Open the fabric and domain of the first provider matching `q`.
    pub fn open(q: &InfoQuery) -> Result<Domain> {
        let info = Info::get(q)?;
        let mut fabric: *mut fid_fabric = ptr::null_mut();
        // SAFETY: info.raw() is a valid fi_info from fi_getinfo; out-pointer valid.
        check("fi_fabric", unsafe {
            fi_fabric((*info.raw()).fabric_attr, &mut fabric, ptr::null_mut())
        })?;
        let mut raw: *mut fid_domain = ptr::null_mut();
        // SAFETY: fabric just opened; info valid; out-pointer valid.
        let r = unsafe { fi_domain(fabric, info.raw(), &mut raw, ptr::null_mut()) };
        if let Err(e) = check("fi_domain", r) {
            // SAFETY: the fabric was opened above and is closed once.
            unsafe { fi_close(&mut (*fabric).fid) };
            return Err(e);
        }
        let mr_mode = info.mr_mode();
        let key_mask = key_mask(info.mr_key_size());
        Ok(Domain {
            fabric,
            raw,
            info,
            mr_mode,
            lock: Mutex::new(()),
            deferred: Mutex::new(Vec::new()),
            key_mask,
        })
    }

    /// Serialize access; runs the closes queued while the lock was taken.
    pub fn lock(&self) -> DomainGuard<'_> {
        let g = DomainGuard {
            _g: self.lock.lock(),
            domain: self,
        };
        self.drain();
        g
    }

    /// The lock if free now (`None` if anyone, this thread included, holds it).
    pub(crate) fn try_lock(&self) -> Option<DomainGuard<'_>> {
        self.lock.try_lock().map(|g| DomainGuard {
            _g: g,
            domain: self,
        })
    }

    fn drain(&self) {
        let items = std::mem::take(&mut *self.deferred.lock());
        for d in items {
            // SAFETY: the fid belongs to this domain, is closed once, under the
            // lock; its parents are kept alive by `_keep` until after the close.
            let r = unsafe { fi_close(d.fid) };
            if r != 0 {
                eprintln!("proxystore-ofi: deferred fi_close failed: {r}");
            }
            drop(d);
        }
    }

    /// Close `fid` now if the lock is free, else at the next [`Domain::lock`].
    pub(crate) fn close(&self, fid: *mut fid, keep: Box<dyn Any + Send + Sync>) {
        match self.try_lock() {
            Some(g) => {
                // SAFETY: as in `drain`, with the lock held by `g`.
                let r = unsafe { fi_close(fid) };
                if r != 0 {
                    eprintln!("proxystore-ofi: fi_close failed: {r}");
                }
                drop(keep);
                drop(g);
            }
            None => self.deferred.lock().push(Deferred { fid, _keep: keep }),
        }
    }

    /// Close `fids` in order, now if the lock is free, else at the next lock.
    pub(crate) fn close_all(&self, fids: &[*mut fid]) {
        match self.try_lock() {
            Some(_g) => {
                for &f in fids {
                    // SAFETY: as in `drain`, with the lock held.
                    let r = unsafe { fi_close(f) };
                    if r != 0 {
                        eprintln!("proxystore-ofi: fi_close failed: {r}");
                    }
                }
            }
            None => {
                let mut d = self.deferred.lock();
                for &fid in fids {
                    d.push(Deferred {
                        fid,
                        _keep: Box::new(()),
                    });
                }
            }
        }
    }

    /// The raw domain (valid while `self` lives; use under the lock).
    pub(crate) fn raw(&self) -> *mut fid_domain {
        self.raw
    }

    /// The raw fabric (valid while `self` lives; use under the lock).
    pub(crate) fn fabric_raw(&self) -> *mut fid_fabric {
        self.fabric
    }

    /// The provider's entry.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The provider's memory-registration mode.
    pub fn mr_mode(&self) -> MrMode {
        self.mr_mode
    }

    /// The provider's key size in bytes (`mr_key_size`): how many random
    /// bits a requested key carries (8 bytes: 64; `cxi` without
    /// `FI_MR_PROV_KEY`: 4 bytes, 32 bits).
    pub fn key_bits(&self) -> u32 {
        self.key_mask.count_ones()
    }

    /// A key to request for a registration, for providers without
    /// `FI_MR_PROV_KEY`: random (the OS CSPRNG), as wide as the provider's
    /// key space, never `FI_KEY_NOTAVAIL`. A key is all a peer that can
    /// reach the endpoint needs besides the offset, so it must not be
    /// guessable: sequential keys were read on the second try.
    pub(crate) fn random_key(&self) -> Result<u64> {
        loop {
            let k = getrandom::u64().map_err(|e| {
                proxy_core::Error::io(
                    "draw a memory-registration key (getrandom)",
                    std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })? & self.key_mask;
            if k != FI_KEY_NOTAVAIL {
                return Ok(k);
            }
        }
    }
}

/// `FI_KEY_NOTAVAIL`: what `fi_mr_key` returns for raw keys.
pub(crate) const FI_KEY_NOTAVAIL: u64 = u64::MAX;

/// The mask of a provider's key space: `mr_key_size` bytes (0 or more than
/// 8: 64 bits).
pub(crate) fn key_mask(mr_key_size: usize) -> u64 {
    match mr_key_size {
        1..=7 => (1u64 << (8 * mr_key_size)) - 1,
        _ => u64::MAX,
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        self.drain();
        // SAFETY: every child holds an Arc to this domain, so none is left;
        // the domain and then the fabric are closed once.
        unsafe {
            fi_close(&mut (*self.raw).fid);
            fi_close(&mut (*self.fabric).fid);
        }
    }
}
