//! [`Transfer`]: one bulk transfer (`margo_bulk_ctransfer_timed`) that owns
//! its local buffer and keeps both handles alive until Margo calls back.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use margo_sys::{HG_BULK_PULL, HG_BULK_PUSH, hg_return_t};
use parking_lot::Mutex;
use proxy_core::{Error, Result};

use super::bulk::BulkAccess;
use super::instance::{IN_CALLBACK, Notify};
use super::{Addr, Bulk, HgError, KIND, check, hg_error};

/// Local memory a transfer reads into or writes from, with the bulk handle
/// that covers it.
///
/// # Safety
/// [`BulkBuf::local`] returns a handle of the same instance that covers
/// `offset .. offset + len` of memory owned by `self`, and both stay valid
/// (mapped, not moved) for as long as `self` lives.
pub unsafe trait BulkBuf: Send + 'static {
    /// The handle, the offset of the buffer in it, and the buffer's length.
    fn local(&self) -> (&Bulk, u64, u64);
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `HG_BULK_PULL`: from the peer's handle into the local buffer (a get).
    Pull,
    /// `HG_BULK_PUSH`: from the local buffer into the peer's handle (a put).
    Push,
}

struct State<B> {
    done: AtomicBool,
    ret: AtomicU32,
    /// The handle created for this transfer alone (a put's source), freed
    /// before the buffer.
    _local: Option<Bulk>,
    buf: Mutex<Option<B>>,
    notify: Arc<Notify>,
    peer: Option<Addr>,
    op: &'static str,
    /// The peer's handle, kept until the transfer is done.
    _origin: Option<Arc<Bulk>>,
}

/// A transfer in flight (or done): owns its buffer until Margo completes it,
/// even when the caller gives up and drops the `Transfer` (the completion
/// callback holds a reference of its own).
pub struct Transfer<B> {
    st: Arc<State<B>>,
}

impl<B> std::fmt::Debug for Transfer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Transfer({}, done: {})",
            self.st.op,
            self.st.done.load(Ordering::Acquire)
        )
    }
}

/// Margo's completion callback: runs once per transfer, on the instance's
/// progress thread. Only atomics, a short lock and a drop; never unwinds.
unsafe extern "C" fn on_complete<B: Send + 'static>(uargs: *mut c_void, ret: hg_return_t) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        IN_CALLBACK.with(|c| c.set(true));
        // SAFETY: `uargs` is the reference `Transfer::start` leaked for this
        // callback; Margo calls back exactly once, so it is reclaimed once.
        let st = unsafe { Arc::from_raw(uargs as *const State<B>) };
        st.ret.store(ret, Ordering::Relaxed);
        if ret != margo_sys::hg::SUCCESS && (HgError { code: ret }).is_peer_failure() {
            if let Some(p) = &st.peer {
                p.set_failed();
            }
        }
        st.done.store(true, Ordering::Release);
        st.notify.notify();
        // May drop the buffer (back to its pool) and, when the caller gave
        // up, the last handles: Mercury allows that in a callback, and an
        // instance dropped here is finalized without waiting on itself.
        drop(st);
        IN_CALLBACK.with(|c| c.set(false));
    }));
    if r.is_err() {
        // Nothing above panics; if it ever did, unwinding into C is worse.
        std::process::abort();
    }
}

impl<B: BulkBuf> Transfer<B> {
    /// Start moving `buf`'s bytes from (`Pull`) or to (`Push`) `origin` at
    /// `origin_offset` on `peer`. Margo cancels the transfer after `timeout`
    /// (it then completes with `HG_TIMEOUT`).
    pub fn start(
        peer: &Addr,
        origin: &Arc<Bulk>,
        origin_offset: u64,
        buf: B,
        dir: Direction,
        timeout: Duration,
        op: &'static str,
    ) -> Result<Transfer<B>> {
        let (local, local_offset, len) = {
            let (h, o, l) = buf.local();
            (h.raw(), o, l)
        };
        // SAFETY: the local handle covers the buffer and lives as long as it
        // (`BulkBuf`); the state keeps the buffer until the callback ran.
        unsafe {
            Transfer::start_raw(
                peer,
                origin,
                origin_offset,
                (local, local_offset, len),
                None,
                buf,
                dir,
                timeout,
                op,
            )
        }
    }
}

impl Transfer<Bytes> {
    /// Push `src` into `origin` at `origin_offset` on `peer`, through a
    /// read-only handle created over `src` for this transfer (freed with it).
    pub fn push_bytes(
        peer: &Addr,
        origin: &Arc<Bulk>,
        origin_offset: u64,
        src: Bytes,
        timeout: Duration,
        op: &'static str,
    ) -> Result<Transfer<Bytes>> {
        let inst = peer.instance();
        // SAFETY: `src` is kept by the transfer until Margo completed it, and
        // the handle is freed before it (field order of `State`); pushes
        // only read from it.
        let bulk = unsafe { Bulk::create(inst, src.as_ptr(), src.len(), BulkAccess::ReadOnly)? };
        let local = (bulk.raw(), 0, src.len() as u64);
        // SAFETY: the handle covers all of `src` and is owned by the state
        // together with `src`.
        unsafe {
            Transfer::start_raw(
                peer,
                origin,
                origin_offset,
                local,
                Some(bulk),
                src,
                Direction::Push,
                timeout,
                op,
            )
        }
    }
}

impl<B: Send + 'static> Transfer<B> {
    /// # Safety
    /// `local` (handle, offset, length) covers memory that `buf` or
    /// `keep_local` keeps valid for as long as they live.
    #[allow(clippy::too_many_arguments)]
    unsafe fn start_raw(
        peer: &Addr,
        origin: &Arc<Bulk>,
        origin_offset: u64,
        local: (margo_sys::hg_bulk_t, u64, u64),
        keep_local: Option<Bulk>,
        buf: B,
        dir: Direction,
        timeout: Duration,
        op: &'static str,
    ) -> Result<Transfer<B>> {
        let inst = peer.instance().clone();
        let (local, local_offset, len) = local;
        let end = origin_offset.checked_add(len);
        if end.is_none_or(|e| e > origin.len()) {
            return Err(Error::permanent(
                KIND,
                op,
                format!(
                    "{len} bytes at {origin_offset} lie outside the peer's {} B handle",
                    origin.len()
                ),
            ));
        }
        let st = Arc::new(State {
            done: AtomicBool::new(false),
            ret: AtomicU32::new(margo_sys::hg::SUCCESS),
            _local: keep_local,
            buf: Mutex::new(Some(buf)),
            notify: inst.notify.clone(),
            peer: Some(peer.clone()),
            op,
            _origin: Some(origin.clone()),
        });
        let uargs = Arc::into_raw(st.clone()) as *mut c_void;
        let op_code = match dir {
            Direction::Pull => HG_BULK_PULL,
            Direction::Push => HG_BULK_PUSH,
        };
        // SAFETY: the address and both handles belong to `inst` and are kept
        // alive by the state until the callback ran (the local one by the
        // caller's promise); the range was checked against the origin handle;
        // `uargs` is a leaked reference that exactly one callback reclaims.
        let r = unsafe {
            (inst.api().margo_bulk_ctransfer_timed)(
                inst.mid(),
                op_code,
                peer.raw(),
                origin.raw(),
                origin_offset as usize,
                local,
                local_offset as usize,
                len as usize,
                timeout.as_secs_f64() * 1e3,
                Some(on_complete::<B>),
                uargs,
            )
        };
        if let Err(e) = check(op, r) {
            // Not started: no callback will come; take the reference back.
            // SAFETY: the reference leaked above, reclaimed once.
            drop(unsafe { Arc::from_raw(uargs as *const State<B>) });
            return Err(e);
        }
        Ok(Transfer { st })
    }

    /// A transfer that is already done (a flush with nothing to wait for).
    pub(crate) fn ready(notify: &Arc<Notify>, value: B, op: &'static str) -> Transfer<B> {
        Transfer {
            st: Arc::new(State {
                done: AtomicBool::new(true),
                ret: AtomicU32::new(margo_sys::hg::SUCCESS),
                buf: Mutex::new(Some(value)),
                _local: None,
                notify: notify.clone(),
                peer: None,
                op,
                _origin: None,
            }),
        }
    }

    /// Whether Margo completed it.
    pub fn is_done(&self) -> bool {
        self.st.done.load(Ordering::Acquire)
    }

    /// The buffer, or the error Margo reported, once done.
    pub fn take(&self) -> Option<Result<B>> {
        if !self.is_done() {
            return None;
        }
        let buf = self.st.buf.lock().take()?;
        let ret = self.st.ret.load(Ordering::Relaxed);
        Some(if ret == margo_sys::hg::SUCCESS {
            Ok(buf)
        } else {
            Err(hg_error(self.st.op, ret))
        })
    }
}
