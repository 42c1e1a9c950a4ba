//! The client's pool of registered, pre-faulted receive buffers.
//!
//! A get lands in a [`RecvBuf`] taken from the pool; the payload is handed to
//! the caller as `Bytes` owning that buffer (`Bytes::from_owner`, no copy), and
//! the buffer returns to the pool when the last `Bytes` clone is dropped.
//!
//! Up to 16 MiB, buffers come in size classes: powers of two from 4 KiB to
//! 1 MiB, then eighths of the next power of two (at most 12.5%
//! over-allocation). Larger buffers are sized to the request rounded up to
//! 2 MiB, and an idle one is reused for any request that it holds with at most
//! 25% to spare (the smallest such buffer first): a 1 GiB object needs one
//! 1 GiB + 2 MiB buffer, mapped, registered and faulted in once, not a fresh
//! one per get. At most `max_idle` bytes stay idle: a large buffer coming back
//! unmaps the least recently returned idle large buffers to make room, and a
//! buffer that does not fit at all is unmapped instead of kept.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::Result;
use ucx_sys::ucp_mem_h;

use crate::ucx::{Context, MemRegion, RmaTarget};

const MIN_CLASS: usize = 4096;
/// Requests above this many bytes get "large" buffers (reused best-fit).
pub const LARGE: usize = 16 << 20;
const LARGE_GRANULE: usize = 2 << 20;

struct PoolState {
    /// Idle buffers of the small size classes.
    free: HashMap<usize, Vec<MemRegion>>,
    /// Idle large buffers (class, region), least recently returned first.
    large: Vec<(usize, MemRegion)>,
    idle: usize,
    registered: usize,
}

struct PoolShared {
    ctx: Arc<Context>,
    max_idle: usize,
    state: Mutex<PoolState>,
}

/// The buffer size allocated for a request of `len` bytes.
pub fn size_class(len: usize) -> usize {
    if len > LARGE {
        return len.div_ceil(LARGE_GRANULE) * LARGE_GRANULE;
    }
    let p = len.max(MIN_CLASS).next_power_of_two();
    if p <= 1 << 20 {
        p
    } else {
        let step = p / 8;
        len.div_ceil(step) * step
    }
}

/// Whether an idle large buffer of `class` bytes may serve a request of `len`.
fn large_fits(class: usize, len: usize) -> bool {
    class >= len && class - len <= (len / 4).max(LARGE_GRANULE)
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
                    large: Vec::new(),
                    idle: 0,
                    registered: 0,
                }),
            }),
        }
    }

    /// A buffer of exactly `len` usable bytes (backed by a larger class).
    pub fn acquire(&self, len: usize) -> Result<RecvBuf> {
        self.acquire_at(len, 0)
    }

    /// A buffer of `len` usable bytes that start `start` bytes into its
    /// registered region (to give them a chosen page phase, see
    /// [`crate::proto::PHASED`]).
    pub fn acquire_at(&self, len: usize, start: usize) -> Result<RecvBuf> {
        let need = len + start;
        let mut class = size_class(need);
        let reused = {
            let mut s = self.shared.state.lock();
            let r = if class > LARGE {
                let best = s
                    .large
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, _))| large_fits(*c, need))
                    .min_by_key(|(_, (c, _))| *c)
                    .map(|(i, _)| i);
                best.map(|i| s.large.remove(i)).map(|(c, r)| {
                    class = c;
                    r
                })
            } else {
                s.free.get_mut(&class).and_then(Vec::pop)
            };
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
            start,
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
    /// Offset of the usable bytes in the region.
    start: usize,
    len: usize,
    pool: Arc<PoolShared>,
}

impl std::fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecvBuf({} at {} of {} B)",
            self.len, self.start, self.class
        )
    }
}

impl RecvBuf {
    fn region(&self) -> &MemRegion {
        self.region.as_ref().expect("region present until drop")
    }

    fn ptr(&self) -> *mut u8 {
        // SAFETY: `start + len` is at most the class size, which the region
        // holds (acquire_at), so the offset stays inside the region.
        unsafe { self.region().as_ptr().add(self.start) }
    }

    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region holds `start + len` initialised (pre-faulted or
        // written) bytes, and while a `RecvBuf` exists no request is writing
        // into it (requests own the buffer while in flight).
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }

    /// The buffer's bytes, mutably (for the stream data path).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
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
        (self.ptr(), self.len)
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
        let max_idle = self.pool.max_idle;
        let mut unmap = Vec::new();
        let mut s = self.pool.state.lock();
        if self.class > LARGE && self.class <= max_idle {
            // Make room by unmapping the least recently returned large buffers.
            while s.idle + self.class > max_idle && !s.large.is_empty() {
                let (c, r) = s.large.remove(0);
                s.idle -= c;
                s.registered -= c;
                unmap.push(r);
            }
        }
        if s.idle + self.class <= max_idle {
            s.idle += self.class;
            if self.class > LARGE {
                s.large.push((self.class, region));
            } else {
                s.free.entry(self.class).or_default().push(region);
            }
        } else {
            s.registered -= self.class;
            unmap.push(region);
        }
        drop(s);
        drop(unmap); // unmapped outside the lock
    }
}

#[cfg(test)]
mod tests {
    use super::{LARGE, large_fits, size_class};

    #[test]
    fn classes() {
        assert_eq!(size_class(0), 4096);
        assert_eq!(size_class(4097), 8192);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 1), (1 << 20) + (1 << 18));
        assert_eq!(size_class(16 << 20), 16 << 20);
        assert_eq!(size_class((256 << 20) + 48), 258 << 20);
        assert_eq!(size_class((1 << 30) + 48), (1 << 30) + (2 << 20));
        for len in [5usize << 20, 100 << 20, 999_999_999] {
            assert!(size_class(len) >= len && size_class(len) <= len + len / 4);
        }
    }

    #[test]
    fn large_reuse() {
        let gib = 1usize << 30;
        assert!(large_fits(size_class(gib + 48), gib + 48));
        assert!(large_fits(size_class(gib + 48), gib - (100 << 20)));
        assert!(!large_fits(size_class(gib + 48), 512 << 20));
        assert!(!large_fits(size_class(gib), gib + (4 << 20)));
        assert!(large_fits(size_class(LARGE + 1), LARGE + 1));
    }
}
