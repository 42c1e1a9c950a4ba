//! Posted one-sided operations whose buffer is owned by the operation until
//! the completion queue reports it.
//!
//! Soundness rule: the destination (or source) buffer moves into a shared
//! operation state when the operation is posted; that state's address is the
//! operation's libfabric context, and one reference to it is leaked for the
//! completion. It comes back only when `fi_cq_read`/`fi_cq_readerr` reports
//! that context. If the caller gives up (drops the [`Op`], times out,
//! panics), the buffer stays in the state and is released (e.g. returned to
//! its pool) only after the provider has finished with it. An operation that
//! never completes keeps its buffer forever: a leak, never a reuse.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use libfabric_sys::*;
use parking_lot::Mutex;
use proxy_core::{Error, Result};

use super::completion::Header;
use super::endpoint::PeerInner;
use super::{DomainGuard, FiError, KIND, Mr, PeerAddr, fi_error};

/// A destination for a one-sided read.
///
/// # Safety
/// `target` must return a pointer to `len` writable bytes that stay valid, at
/// the same address, and unaccessed by anyone else, for as long as the value
/// lives, even when the value is moved. `desc`, if not null, must be the
/// `fi_mr_desc` of a registration covering that range, alive as long as the value.
pub unsafe trait RmaTarget: Send + 'static {
    /// Destination pointer and length.
    fn target(&mut self) -> (*mut u8, usize);
    /// The local registration's descriptor (`FI_MR_LOCAL`), or null.
    fn desc(&self) -> *mut c_void;
}

/// A source for a one-sided write.
///
/// # Safety
/// `source` must return a pointer to `len` readable bytes that stay valid, at
/// the same address and unmodified, for as long as the value lives, even
/// when the value is moved.
pub unsafe trait RmaSource: Send + 'static {
    /// Source pointer and length.
    fn source(&self) -> (*const u8, usize);
}

// SAFETY: a `Bytes` handle keeps its (immutable) storage alive and in place.
unsafe impl RmaSource for bytes::Bytes {
    fn source(&self) -> (*const u8, usize) {
        (self.as_ptr(), self.len())
    }
}

#[repr(C)]
struct OpState<B> {
    hdr: Header,
    keep: Mutex<Option<B>>,
    /// A registration made for this operation (a put's source with
    /// `FI_MR_LOCAL`), released with the buffer.
    _mr: Option<Mr>,
    /// The peer: its AV entry stays while the operation is in flight.
    peer: Arc<PeerInner>,
    /// A flush's destination byte, released with the state.
    scratch: Mutex<Option<Box<[u8; 1]>>>,
}

/// # Safety
/// `p` must come from `Arc::<OpState<B>>::into_raw`, reclaimed once.
unsafe fn release<B>(p: *const Header) {
    // SAFETY: `Header` is the first field of the repr(C) `OpState<B>`, so
    // the pointers are equal; the caller guarantees provenance and uniqueness.
    drop(unsafe { Arc::from_raw(p.cast::<OpState<B>>()) });
}

// SAFETY: the context is only handed to the provider (under the domain lock)
// and never read by Rust; the rest is atomics, mutexes and Send data.
unsafe impl<B: Send> Send for OpState<B> {}
// SAFETY: see `Send`.
unsafe impl<B: Send> Sync for OpState<B> {}

/// An in-flight (or finished) operation owning a `B`.
pub struct Op<B> {
    state: Arc<OpState<B>>,
    posted: bool,
}

impl<B> std::fmt::Debug for Op<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Op({}, done: {})", self.state.hdr.op, self.is_done())
    }
}

fn new_state<B: Send + 'static>(
    op: &'static str,
    keep: B,
    mr: Option<Mr>,
    peer: &PeerAddr,
) -> Arc<OpState<B>> {
    Arc::new(OpState {
        hdr: Header {
            ctx: UnsafeCell::new(fi_context2::default()),
            done: AtomicBool::new(false),
            err: AtomicI32::new(0),
            detail: Mutex::new(None),
            op,
            release: release::<B>,
        },
        keep: Mutex::new(Some(keep)),
        _mr: mr,
        peer: peer.inner.clone(),
        scratch: Mutex::new(None),
    })
}

thread_local! {
    /// Per peer, where this thread's last write went (address, key) since
    /// its last flush of that peer: a put's writes and its flush run on the
    /// caller's thread, so a flush reads back after that put's own writes
    /// (another thread's flush may run in between, and covers its own).
    static LAST_WRITE: std::cell::RefCell<Vec<(std::sync::Weak<PeerInner>, u64, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Post with `call(context)`, retrying `-FI_EAGAIN` (progressing the CQ in
/// between) until `deadline`.
fn post<B: Send + 'static>(
    g: &DomainGuard<'_>,
    peer: &PeerAddr,
    state: Arc<OpState<B>>,
    deadline: Instant,
    mut call: impl FnMut(*mut c_void) -> isize,
) -> Result<Op<B>> {
    let op = state.hdr.op;
    let ctx = Arc::into_raw(state.clone()).cast_mut().cast::<c_void>();
    loop {
        let r = call(ctx);
        if r == 0 {
            return Ok(Op {
                state,
                posted: true,
            });
        }
        if r == -(FI_EAGAIN as isize) && Instant::now() < deadline {
            peer.endpoint().progress(g);
            std::hint::spin_loop();
            continue;
        }
        // Not posted: the completion will never come; take its reference back.
        // SAFETY: `ctx` came from Arc::into_raw above and is reclaimed once.
        drop(unsafe { Arc::from_raw(ctx.cast_const().cast::<OpState<B>>()) });
        let e = FiError::from_ret(r);
        if e.is_peer_failure() {
            peer.inner.failed.store(true, Ordering::Relaxed);
        }
        return Err(if r == -(FI_EAGAIN as isize) {
            Error::Timeout {
                connector: KIND.into(),
                operation: op,
                after: std::time::Duration::ZERO,
            }
        } else {
            fi_error(op, e)
        });
    }
}

impl PeerAddr {
    /// Post a one-sided read of `target`'s length from the peer's `addr`
    /// (an address or an offset, as the provider's `FI_MR_VIRT_ADDR` says)
    /// under `key` into `target`, which comes back from [`Op::take`].
    pub fn read<B: RmaTarget>(
        &self,
        g: &DomainGuard<'_>,
        addr: u64,
        key: u64,
        mut target: B,
        deadline: Instant,
    ) -> Result<Op<B>> {
        let (ptr, len) = target.target();
        let desc = target.desc();
        let ep = self.endpoint().raw();
        let src = self.inner.addr;
        let state = new_state("fi_read", target, None, self);
        post(g, self, state, deadline, |ctx| {
            // SAFETY: lock held; `ptr..ptr+len` stays valid until completion
            // (the buffer lives in the state, whose reference the context
            // carries); `desc` covers it (RmaTarget contract); `ctx` points
            // to an fi_context2 inside that state.
            unsafe { fi_read(ep, ptr.cast(), len, desc, src, addr, key, ctx) }
        })
    }

    /// Post a one-sided write of `source` to the peer's `addr` under `key`,
    /// completed at the level `completion` asks for (`FI_DELIVERY_COMPLETE`
    /// or `FI_TRANSMIT_COMPLETE`; see `Ofi::put` for when which suffices).
    pub fn write<S: RmaSource>(
        &self,
        g: &DomainGuard<'_>,
        addr: u64,
        key: u64,
        source: S,
        completion: u64,
        deadline: Instant,
    ) -> Result<Op<S>> {
        let (ptr, len) = source.source();
        let ep = self.endpoint();
        let mr = if ep.domain().mr_mode().local() {
            // SAFETY: the source stays in place and alive as long as the
            // state, which also holds (and drops first... after) this MR:
            // both are released together after completion.
            Some(unsafe { Mr::register(g, ep.domain(), Some(ep), ptr, len, FI_WRITE as u64)? })
        } else {
            None
        };
        let mut desc = mr.as_ref().map_or(std::ptr::null_mut(), Mr::desc);
        let raw = ep.raw();
        let dest = self.inner.addr;
        let state = new_state("fi_write", source, mr, self);
        let op = post(g, self, state, deadline, |ctx| {
            let iov = libc::iovec {
                iov_base: ptr.cast_mut().cast(),
                iov_len: len,
            };
            let rma = fi_rma_iov { addr, len, key };
            let msg = fi_msg_rma {
                msg_iov: (&raw const iov).cast(),
                desc: &mut desc,
                iov_count: 1,
                addr: dest,
                rma_iov: &rma,
                rma_iov_count: 1,
                context: ctx,
                data: 0,
            };
            // SAFETY: lock held; the message and its iovecs live across the
            // call (providers copy them); the source stays valid until
            // completion (it lives in the state); `desc` covers it.
            unsafe { fi_writemsg(raw, &msg, FI_COMPLETION as u64 | completion) }
        })?;
        LAST_WRITE.with(|w| {
            let mut w = w.borrow_mut();
            w.retain(|(p, _, _)| p.strong_count() > 0 && !std::ptr::eq(p.as_ptr(), &*self.inner));
            w.push((Arc::downgrade(&self.inner), addr, key));
        });
        Ok(op)
    }

    /// Post a one-byte read of where this thread's last write to this peer
    /// went (a flush: see `Ofi::flush`) into a byte the operation owns;
    /// without a write by this thread since its last flush, an operation
    /// complete at once. Only for providers without `FI_MR_LOCAL` (the byte
    /// is not registered).
    pub fn read_back(&self, g: &DomainGuard<'_>, deadline: Instant) -> Result<Op<()>> {
        let last = LAST_WRITE.with(|w| {
            let mut w = w.borrow_mut();
            // A live weak reference to this allocation is this peer (a dead
            // one may share the address of a newer peer).
            let i = w.iter().position(|(p, _, _)| {
                p.strong_count() > 0 && std::ptr::eq(p.as_ptr(), &*self.inner)
            })?;
            let (_, addr, key) = w.swap_remove(i);
            Some((addr, key))
        });
        let Some((addr, key)) = last else {
            return Ok(Op::ready(self, "flush", ()));
        };
        let mut byte = Box::new([0u8; 1]);
        let dst = byte.as_mut_ptr();
        let ep = self.endpoint().raw();
        let src = self.inner.addr;
        let state = new_state("flush", (), None, self);
        *state.scratch.lock() = Some(byte);
        post(g, self, state, deadline, |ctx| {
            // SAFETY: lock held; the byte lives on the heap in the state
            // (never moved out before the completion releases the state); no
            // descriptor is needed without FI_MR_LOCAL; `ctx` points to the
            // state's fi_context2.
            unsafe { fi_read(ep, dst.cast(), 1, std::ptr::null_mut(), src, addr, key, ctx) }
        })
    }
}

impl<B: Send + 'static> Op<B> {
    /// An operation that is complete at once (e.g. a flush with nothing to do).
    pub fn ready(peer: &PeerAddr, op: &'static str, keep: B) -> Op<B> {
        let state = new_state(op, keep, None, peer);
        state.hdr.done.store(true, Ordering::Release);
        Op {
            state,
            posted: false,
        }
    }
}

impl<B> Op<B> {
    /// Whether the provider reported completion (success or failure).
    pub fn is_done(&self) -> bool {
        self.state.hdr.done.load(Ordering::Acquire)
    }

    /// The buffer, once complete: `Ok` with the data in place, or the error.
    /// `None` while still in flight.
    pub fn take(&self) -> Option<Result<B>> {
        if !self.is_done() {
            return None;
        }
        let code = self.state.hdr.err.load(Ordering::Relaxed);
        if code != 0 {
            let e = FiError {
                code,
                detail: self.state.hdr.detail.lock().clone(),
            };
            if e.is_peer_failure() {
                self.state.peer.failed.store(true, Ordering::Relaxed);
            }
            return Some(Err(fi_error(self.state.hdr.op, e)));
        }
        self.state.keep.lock().take().map(Ok).or_else(|| {
            Some(Err(Error::permanent(
                KIND,
                self.state.hdr.op,
                "result already taken",
            )))
        })
    }

    /// Ask the provider to cancel an in-flight operation; it then completes
    /// (with `FI_ECANCELED`, or normally) during later progress, and only
    /// then is its buffer released.
    pub fn cancel(&self, g: &DomainGuard<'_>) {
        if self.posted && !self.is_done() {
            let ctx = Arc::as_ptr(&self.state).cast_mut().cast::<c_void>();
            self.state.peer.ep.cancel(g, ctx);
        }
    }

    /// The endpoint the operation was posted on (progress it to complete it).
    pub fn endpoint(&self) -> &Arc<super::Endpoint> {
        &self.state.peer.ep
    }

    /// The peer's failure flag is set by errors that say the peer is gone.
    pub fn peer_failed(&self) -> bool {
        self.state.peer.failed.load(Ordering::Relaxed)
    }
}
