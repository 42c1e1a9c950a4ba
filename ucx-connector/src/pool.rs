//! The client's pool of registered, pre-faulted receive buffers.
//!
//! A get lands in a [`RecvBuf`] taken from the pool; the payload is handed to
//! the caller as `Bytes` owning that buffer (`Bytes::from_owner`, no copy), and
//! the buffer returns to the pool when the last `Bytes` clone is dropped.
//! Buffers come in size classes: powers of two from 4 KiB to 1 MiB, then
//! eighths of the next power of two (at most 12.5% over-allocation); idle
//! buffers beyond `max_idle` bytes are unmapped instead of kept.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::Result;
use ucx_sys::ucp_mem_h;

use crate::ucx::{Context, MemRegion, RmaTarget};

const MIN_CLASS: usize = 4096;

struct PoolState {
    free: HashMap<usize, Vec<MemRegion>>,
    idle: usize,
    registered: usize,
}

struct PoolShared {
    ctx: Arc<Context>,
    max_idle: usize,
    state: Mutex<PoolState>,
}

/// The buffer size used for a request of `len` bytes.
pub fn size_class(len: usize) -> usize {
    let p = len.max(MIN_CLASS).next_power_of_two();
    if p <= 1 << 20 {
        p
    } else {
        let step = p / 8;
        len.div_ceil(step) * step
    }
}

/// A pool of registered receive buffers. Cheap to clone.
#[derive(Clone)]
pub struct RecvPool {
    shared: Arc<PoolShared>,
}

impl std::fmt::Debug for RecvPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.state.lock();
        write!(
            f,
            "RecvPool(idle {} B, registered {} B)",
            s.idle, s.registered
        )
    }
}

impl RecvPool {
    /// A pool keeping at most `max_idle` idle bytes.
    pub fn new(ctx: &Arc<Context>, max_idle: usize) -> RecvPool {
        RecvPool {
            shared: Arc::new(PoolShared {
                ctx: ctx.clone(),
                max_idle,
                state: Mutex::new(PoolState {
                    free: HashMap::new(),
                    idle: 0,
                    registered: 0,
                }),
            }),
        }
    }

    /// A buffer of exactly `len` usable bytes (backed by a larger class).
    pub fn acquire(&self, len: usize) -> Result<RecvBuf> {
        let class = size_class(len);
        let reused = {
            let mut s = self.shared.state.lock();
            let r = s.free.get_mut(&class).and_then(Vec::pop);
            if r.is_some() {
                s.idle -= class;
            }
            r
        };
        let region = match reused {
            Some(r) => r,
            None => {
                let r = MemRegion::allocate(&self.shared.ctx, class, true)?;
                self.shared.state.lock().registered += class;
                r
            }
        };
        Ok(RecvBuf {
            region: Some(region),
            class,
            len,
            pool: self.shared.clone(),
        })
    }

    /// Bytes registered by the pool (idle and in use).
    pub fn registered_bytes(&self) -> usize {
        self.shared.state.lock().registered
    }

    /// Bytes idle in the pool.
    pub fn idle_bytes(&self) -> usize {
        self.shared.state.lock().idle
    }
}

/// A registered buffer of `len` bytes, returned to its pool on drop.
pub struct RecvBuf {
    region: Option<MemRegion>,
    class: usize,
    len: usize,
    pool: Arc<PoolShared>,
}

impl std::fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecvBuf({} of {} B)", self.len, self.class)
    }
}

impl RecvBuf {
    fn region(&self) -> &MemRegion {
        self.region.as_ref().expect("region present until drop")
    }

    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region holds at least `len` initialised (pre-faulted,
        // zeroed or written) bytes, and while a `RecvBuf` exists no request is
        // writing into it (requests own the buffer while in flight).
        unsafe { std::slice::from_raw_parts(self.region().as_ptr(), self.len) }
    }

    /// The buffer's bytes, mutably (for the stream data path).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.region().as_ptr(), self.len) }
    }

    /// Hand out `range` as `Bytes` owning this buffer (no copy).
    pub fn into_bytes(self, range: std::ops::Range<usize>) -> Bytes {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range within buffer"
        );
        Bytes::from_owner(View { buf: self, range })
    }
}

struct View {
    buf: RecvBuf,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        &self.buf.as_slice()[self.range.clone()]
    }
}

// SAFETY: the registered region never moves and stays valid while the
// RecvBuf lives; the RecvBuf is owned by the request while in flight.
unsafe impl RmaTarget for RecvBuf {
    fn target(&mut self) -> (*mut u8, usize) {
        (self.region().as_ptr(), self.len)
    }

    fn memh(&self) -> Option<ucp_mem_h> {
        Some(self.region().memh())
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        let mut s = self.pool.state.lock();
        if s.idle + self.class <= self.pool.max_idle {
            s.idle += self.class;
            s.free.entry(self.class).or_default().push(region);
        } else {
            s.registered -= self.class;
            drop(s);
            drop(region); // unmapped outside the lock
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn classes() {
        assert_eq!(size_class(0), 4096);
        assert_eq!(size_class(4097), 8192);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 1), (1 << 20) + (1 << 18));
        assert_eq!(size_class((256 << 20) + 48), 320 << 20);
        for len in [5usize << 20, 100 << 20, 999_999_999] {
            assert!(size_class(len) >= len && size_class(len) <= len + len / 4);
        }
    }
}
