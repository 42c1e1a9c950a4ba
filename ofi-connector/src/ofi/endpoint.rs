//! The `FI_EP_RDM` endpoint with its address vector and completion queue,
//! peers in the AV, and completion progress.

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use libfabric_sys::*;
use proxy_core::{Error, Result};

use super::completion::Header;
use super::{Domain, DomainGuard, FiError, KIND, check};

/// An `FI_EP_RDM` endpoint, bound to its own AV and CQ, enabled. Closed (in
/// order: endpoint, AV, CQ) on drop, which keeps the domain alive.
pub struct Endpoint {
    ep: *mut fid_ep,
    av: *mut fid_av,
    cq: *mut fid_cq,
    /// The CQ's wait file descriptor (`FI_WAIT_FD`, from `FI_GETWAIT`), when
    /// the endpoint was opened with [`Endpoint::open_waitable`] and the
    /// provider offers one.
    wait_fd: Option<std::os::raw::c_int>,
    /// Peers by address: providers map one address to one AV entry (shm
    /// returns the same `fi_addr_t` for a second insert), so one entry is
    /// shared and removed once, by its last user. Used under the domain lock.
    peers: parking_lot::Mutex<HashMap<Vec<u8>, Weak<PeerInner>>>,
    /// Whether an entry was removed from the AV (see
    /// [`Endpoint::reuses_stale_slots`]).
    removed: AtomicBool,
    domain: Arc<Domain>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({:?})", self.domain)
    }
}

// SAFETY: every call on the handles goes through the domain lock.
unsafe impl Send for Endpoint {}
// SAFETY: see `Send`.
unsafe impl Sync for Endpoint {}

/// Raw handles opened so far, closed in reverse on an error during `open`.
struct Partial {
    fids: Vec<*mut fid>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        for f in self.fids.drain(..).rev() {
            // SAFETY: each fid was opened by `open` and is closed once.
            unsafe { fi_close(f) };
        }
    }
}

impl Endpoint {
    /// Open an endpoint on `domain` with its own AV and CQ (no wait object:
    /// completions are polled).
    pub fn open(domain: &Arc<Domain>) -> Result<Arc<Endpoint>> {
        Self::open_with(domain, false)
    }

    /// As [`open`](Self::open), with a CQ that has a wait file descriptor
    /// (`FI_WAIT_FD`) when the provider offers one, so that an idle
    /// progress thread can sleep in [`wait`](Self::wait) until the provider
    /// has work (`fi_trywait` + `poll`) instead of polling on a timer.
    /// Providers without `FI_WAIT_FD` get a polled CQ, as with `open`.
    pub fn open_waitable(domain: &Arc<Domain>) -> Result<Arc<Endpoint>> {
        Self::open_with(domain, true)
    }

    fn open_with(domain: &Arc<Domain>, waitable: bool) -> Result<Arc<Endpoint>> {
        let _g = domain.lock();
        let mut partial = Partial { fids: Vec::new() };
        let open_cq = |wait_obj| {
            let mut cq_attr = fi_cq_attr {
                format: fi_cq_format_FI_CQ_FORMAT_CONTEXT,
                wait_obj,
                size: 1024,
                ..Default::default()
            };
            let mut cq: *mut fid_cq = ptr::null_mut();
            // SAFETY: lock held; attr and out-pointer valid.
            check("fi_cq_open", unsafe {
                fi_cq_open(domain.raw(), &mut cq_attr, &mut cq, ptr::null_mut())
            })
            .map(|_| cq)
        };
        let mut wait_fd = None;
        let cq = match waitable.then(|| open_cq(fi_wait_obj_FI_WAIT_FD)) {
            Some(Ok(cq)) => {
                let mut fd: std::os::raw::c_int = -1;
                // SAFETY: lock held; cq just opened; FI_GETWAIT with
                // FI_WAIT_FD writes one int.
                let r = unsafe {
                    fi_control(
                        &mut (*cq).fid,
                        FI_GETWAIT as i32,
                        (&mut fd as *mut std::os::raw::c_int).cast(),
                    )
                };
                if r == 0 && fd >= 0 {
                    wait_fd = Some(fd);
                }
                cq
            }
            _ => open_cq(fi_wait_obj_FI_WAIT_NONE)?,
        };
        // SAFETY: cq just opened.
        partial.fids.push(unsafe { &mut (*cq).fid });
        let mut av_attr = fi_av_attr {
            type_: fi_av_type_FI_AV_UNSPEC,
            count: 64,
            ..Default::default()
        };
        let mut av: *mut fid_av = ptr::null_mut();
        // SAFETY: as above.
        check("fi_av_open", unsafe {
            fi_av_open(domain.raw(), &mut av_attr, &mut av, ptr::null_mut())
        })?;
        // SAFETY: av just opened.
        partial.fids.push(unsafe { &mut (*av).fid });
        let mut ep: *mut fid_ep = ptr::null_mut();
        // SAFETY: lock held; the domain's info is valid; out-pointer valid.
        check("fi_endpoint", unsafe {
            fi_endpoint(domain.raw(), domain.info().raw(), &mut ep, ptr::null_mut())
        })?;
        // SAFETY: ep just opened.
        partial.fids.push(unsafe { &mut (*ep).fid });
        // SAFETY: lock held; ep, av and cq are alive and belong to this domain.
        unsafe {
            check("fi_ep_bind(av)", fi_ep_bind(ep, &mut (*av).fid, 0))?;
            check(
                "fi_ep_bind(cq)",
                fi_ep_bind(ep, &mut (*cq).fid, (FI_TRANSMIT | FI_RECV) as u64),
            )?;
            check("fi_enable", fi_enable(ep))?;
        }
        partial.fids.clear();
        Ok(Arc::new(Endpoint {
            ep,
            av,
            cq,
            wait_fd,
            peers: parking_lot::Mutex::new(HashMap::new()),
            removed: AtomicBool::new(false),
            domain: domain.clone(),
        }))
    }

    /// The domain.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    pub(crate) fn raw(&self) -> *mut fid_ep {
        self.ep
    }

    pub(crate) fn fid(&self) -> *mut fid {
        // SAFETY: the endpoint is alive while `self` is.
        unsafe { &mut (*self.ep).fid }
    }

    /// This endpoint's address (`fi_getname`), what peers insert into their AV.
    pub fn name(&self) -> Result<Vec<u8>> {
        let _g = self.domain.lock();
        let mut buf = vec![0u8; 256];
        let mut len = buf.len();
        // SAFETY: lock held; buf has `len` writable bytes.
        let mut r = unsafe { fi_getname(self.fid(), buf.as_mut_ptr().cast(), &mut len) };
        if r == -(FI_ETOOSMALL as i32) {
            buf.resize(len, 0);
            // SAFETY: as above, with the size the provider asked for.
            r = unsafe { fi_getname(self.fid(), buf.as_mut_ptr().cast(), &mut len) };
        }
        check("fi_getname", r)?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Insert a peer's address (from its `fi_getname`).
    pub fn insert(self: &Arc<Self>, address: &[u8]) -> Result<PeerAddr> {
        if address.is_empty() || address.len() > 4096 {
            return Err(Error::permanent(
                KIND,
                "fi_av_insert",
                format!("bad peer address of {} bytes", address.len()),
            ));
        }
        let _g = self.domain.lock();
        let mut peers = self.peers.lock();
        if let Some(p) = peers.get(address).and_then(Weak::upgrade) {
            return Ok(PeerAddr { inner: p });
        }
        let mut addr: fi_addr_t = 0;
        // SAFETY: lock held; one address of the provider's format (from its
        // fi_getname: the server sends what its endpoint reported, and
        // providers copy what they need); one output slot.
        let n = unsafe {
            fi_av_insert(
                self.av,
                address.as_ptr().cast(),
                1,
                &mut addr,
                0,
                ptr::null_mut(),
            )
        };
        if n != 1 {
            let e = if n < 0 {
                FiError::from_ret(n as isize)
            } else {
                FiError {
                    code: FI_EINVAL as i32,
                    detail: Some("address not inserted".into()),
                }
            };
            return Err(Error::permanent(KIND, "fi_av_insert", e));
        }
        let inner = Arc::new(PeerInner {
            addr,
            address: address.to_vec(),
            failed: Arc::new(AtomicBool::new(false)),
            ep: self.clone(),
        });
        peers.insert(address.to_vec(), Arc::downgrade(&inner));
        Ok(PeerAddr { inner })
    }

    /// Whether a peer inserted now could inherit a removed peer's state.
    ///
    /// libfabric's `shm` (1.17) keeps, in this endpoint's own region, the id
    /// each peer gave it (`smr_peer_data(region)[slot].addr.id`), and
    /// `fi_av_remove` does not reset it. The next `fi_av_insert` takes the
    /// freed slot (its map starts at the last slot it gave out; libfabric's
    /// main branch moves on and comes back to it only after 256 inserts,
    /// still without resetting the id), finds the id set, skips the
    /// connection request and posts commands under the old peer's id into
    /// the new peer's queue. A new server on the port of a killed one, hit
    /// by one such command that wants a response (a write with
    /// `FI_DELIVERY_COMPLETE`), looks up a peer region it never mapped and
    /// dies with SIGSEGV in its progress. So once an `shm` endpoint has
    /// removed a peer, new peers go to a fresh endpoint (a fresh region,
    /// every slot clean; `tests/restart.rs`).
    pub fn reuses_stale_slots(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
            && self.domain.info().provider() == "shm"
    }

    /// Read completions; returns how many were processed.
    pub fn progress(&self, _g: &DomainGuard<'_>) -> usize {
        let mut entries = [fi_cq_entry::default(); 32];
        let mut total = 0;
        loop {
            // SAFETY: lock held; `entries` holds 32 FI_CQ_FORMAT_CONTEXT entries.
            let n = unsafe { fi_cq_read(self.cq, entries.as_mut_ptr().cast(), entries.len()) };
            if n > 0 {
                for e in &entries[..n as usize] {
                    if !e.op_context.is_null() {
                        // SAFETY: every operation we post carries the context
                        // of a live Header (leaked for exactly this completion).
                        unsafe { Header::complete(e.op_context.cast(), Ok(())) };
                    }
                }
                total += n as usize;
                if (n as usize) < entries.len() {
                    return total;
                }
            } else if n == -(FI_EAVAIL as isize) {
                let mut err = fi_cq_err_entry::default();
                // SAFETY: lock held; `err` is a valid entry to fill.
                let r = unsafe { fi_cq_readerr(self.cq, &mut err, 0) };
                if r != 1 {
                    return total;
                }
                let mut e = FiError {
                    code: err.err,
                    detail: None,
                };
                if err.prov_errno != 0 {
                    let mut buf = [0 as std::os::raw::c_char; 256];
                    // SAFETY: lock held; the entry's err_data is the
                    // provider's, buf is writable for its length.
                    let s = unsafe {
                        fi_cq_strerror(
                            self.cq,
                            err.prov_errno,
                            err.err_data,
                            buf.as_mut_ptr(),
                            buf.len(),
                        )
                    };
                    if !s.is_null() {
                        // SAFETY: the provider returned a NUL-terminated string.
                        e.detail = Some(
                            unsafe { std::ffi::CStr::from_ptr(s) }
                                .to_string_lossy()
                                .into_owned(),
                        );
                    }
                }
                if !err.op_context.is_null() {
                    // SAFETY: as above.
                    unsafe { Header::complete(err.op_context.cast(), Err(e)) };
                }
                total += 1;
            } else {
                return total; // -FI_EAGAIN: nothing more now
            }
        }
    }

    /// Whether [`wait`](Self::wait) sleeps on the provider's wait object.
    pub fn can_wait(&self) -> bool {
        self.wait_fd.is_some()
    }

    /// Sleep until the provider may have work for this endpoint (its CQ's
    /// wait fd is readable) or `timeout` passes; returns at once when
    /// `fi_trywait` says progress is needed now. Without a wait fd, sleeps
    /// for `timeout`. Call [`progress`](Self::progress) after it returns.
    pub fn wait(&self, timeout: std::time::Duration) {
        let Some(fd) = self.wait_fd else {
            std::thread::sleep(timeout);
            return;
        };
        let ready = {
            let g = self.domain.lock();
            let mut fids = [
                // SAFETY: the CQ is alive while `self` is.
                unsafe { &mut (*self.cq).fid as *mut fid },
            ];
            // SAFETY: lock held; the fabric and the CQ are alive; one fid.
            let r = unsafe { fi_trywait(g.domain().fabric_raw(), fids.as_mut_ptr(), 1) };
            r != 0 // -FI_EAGAIN: events pending, progress now
        };
        if ready {
            return;
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; the fd belongs to the CQ, which outlives
        // this call (it is closed only when `self` is dropped).
        unsafe { libc::poll(&mut p, 1, ms) };
    }

    /// Ask the provider to cancel the operation with `context`.
    pub(crate) fn cancel(&self, _g: &DomainGuard<'_>, context: *mut c_void) {
        // SAFETY: lock held; `context` is an in-flight operation's context
        // (providers ignore unknown ones).
        unsafe { fi_cancel(self.fid(), context) };
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let fids: [*mut fid; 3] = [
            // SAFETY: the three handles are alive until closed here.
            unsafe { &mut (*self.ep).fid },
            // SAFETY: as above.
            unsafe { &mut (*self.av).fid },
            // SAFETY: as above.
            unsafe { &mut (*self.cq).fid },
        ];
        // In order (endpoint before what it is bound to), by one lock holder.
        self.domain.close_all(&fids);
    }
}

pub(crate) struct PeerInner {
    pub(crate) addr: fi_addr_t,
    address: Vec<u8>,
    pub(crate) failed: Arc<AtomicBool>,
    pub(crate) ep: Arc<Endpoint>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        // Only reached once no operation on the peer is in flight (each
        // holds the peer); removing the entry frees what the provider keeps
        // per peer (e.g. shm's mapping of the peer's region).
        // Under the lock, so no insert of the same address runs meanwhile;
        // if the lock is taken (e.g. by an insert), the entry is left in the
        // AV (still valid, and found again by address).
        if let Some(_g) = self.ep.domain.try_lock() {
            let mut peers = self.ep.peers.lock();
            let mine = peers
                .get(&self.address)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self));
            if !mine {
                return; // a newer PeerInner for the same address owns the entry
            }
            peers.remove(&self.address);
            drop(peers);
            let mut a = self.addr;
            // SAFETY: lock held; `a` was inserted into this AV and is removed once.
            unsafe { fi_av_remove(self.ep.av, &mut a, 1, 0) };
            self.ep
                .removed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A peer inserted into the endpoint's AV (removed when the last operation
/// on it has completed and the last handle is dropped).
#[derive(Clone)]
pub struct PeerAddr {
    pub(crate) inner: Arc<PeerInner>,
}

impl std::fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerAddr({})", self.inner.addr)
    }
}

impl PeerAddr {
    /// Whether an operation on this peer failed because the peer is gone.
    pub fn failed(&self) -> bool {
        self.inner.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The endpoint it was inserted on.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.inner.ep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofi::InfoQuery;
    use std::time::{Duration, Instant};

    fn domain(provider: &str) -> Arc<Domain> {
        Arc::new(
            Domain::open(&InfoQuery {
                provider: Some(provider.into()),
                domain: None,
            })
            .expect("libfabric provider"),
        )
    }

    /// `tcp;ofi_rxm` (manual progress) gives the server's CQ a wait fd, so
    /// its idle progress thread sleeps in the kernel until a peer sends
    /// something; a plain endpoint has none. An idle wait returns after
    /// about its timeout, not at once (no busy loop) and not never.
    #[test]
    fn tcp_endpoints_can_sleep_on_a_wait_fd() {
        let d = domain("tcp;ofi_rxm");
        let ep = Endpoint::open_waitable(&d).unwrap();
        assert!(ep.can_wait(), "tcp;ofi_rxm offers FI_WAIT_FD");
        assert!(!Endpoint::open(&d).unwrap().can_wait());
        let t = Instant::now();
        for _ in 0..5 {
            let _ = ep.progress(&d.lock());
            ep.wait(Duration::from_millis(20));
        }
        let idle = t.elapsed();
        assert!(
            idle >= Duration::from_millis(50),
            "idle waits slept: {idle:?}"
        );
        assert!(idle < Duration::from_secs(5), "idle waits return: {idle:?}");
    }

    /// A provider without a wait object still opens (polled CQ), and `wait`
    /// then sleeps for the timeout.
    #[test]
    fn shm_endpoints_open_waitable_either_way() {
        let d = domain("shm");
        let ep = Endpoint::open_waitable(&d).unwrap();
        let t = Instant::now();
        ep.wait(Duration::from_millis(10));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
