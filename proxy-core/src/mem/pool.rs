//! One pool of reusable receive buffers for every connector.
//!
//! A get lands in a [`PoolBuf`]; the payload is handed to the caller as
//! `Bytes` owning that buffer (`Bytes::from_owner`, no copy), and the buffer
//! returns to its pool when the last `Bytes` clone is dropped, already
//! faulted in (and registered, when the [`Allocator`] registers it with a
//! fabric) for the next get.
//!
//! Reuse policy. Up to [`LARGE`] (16 MiB), buffers come in size classes:
//! powers of two from 4 KiB to 1 MiB, then eighths of the next power of two
//! (at most 12.5% over-allocation). Larger buffers are sized to the request
//! rounded up to 2 MiB, and an idle one is reused for any request that it
//! holds with at most 25% (or 2 MiB) to spare, the smallest such buffer first:
//! a 1 GiB object needs one 1 GiB + 2 MiB buffer, mapped, registered and
//! faulted in once, not a fresh one per get. At most `max_idle` bytes stay
//! idle: a large buffer coming back unmaps the least recently returned idle
//! large buffers to make room, and a buffer that does not fit at all is
//! released instead of kept. A buffer outliving its pool is simply released.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use super::Mmap;
use crate::Result;

const MIN_CLASS: usize = 4096;
/// Requests above this many bytes get "large" buffers (reused best-fit).
pub const LARGE: usize = 16 << 20;
const LARGE_GRANULE: usize = 2 << 20;

/// Memory the pool hands out: it stays at one address, and at least
/// [`Region::len`] bytes from [`Region::as_ptr`] are readable and writable
/// for as long as the value lives.
///
/// # Safety
/// Implementors guarantee the above (the pool makes slices of it).
pub unsafe trait Region: Send + Sync + 'static {
    /// Start of the memory.
    fn as_ptr(&self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the region has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// SAFETY: an anonymous writable mapping stays in place until dropped.
unsafe impl Region for Mmap {
    fn as_ptr(&self) -> *mut u8 {
        Mmap::as_ptr(self)
    }
    fn len(&self) -> usize {
        Mmap::len(self)
    }
}

/// Where a pool's memory comes from: a fabric allocates and registers it
/// (UCX's `ucp_mem_map`, libfabric's `fi_mr_reg` over a mapping, ...), or
/// [`AnonAllocator`] maps plain memory for socket receives.
pub trait Allocator: Send + Sync + 'static {
    /// The memory (and registration) of one buffer.
    type Region: Region;
    /// `len` bytes (at least), pre-faulted.
    fn allocate(&self, len: usize) -> Result<Self::Region>;
}

/// Plain anonymous mappings, pre-faulted (sockets, the stream data path).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnonAllocator;

impl Allocator for AnonAllocator {
    type Region = Mmap;
    fn allocate(&self, len: usize) -> Result<Mmap> {
        Mmap::anonymous(len, true).map_err(|e| crate::Error::io("map a receive buffer", e))
    }
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

struct State<R> {
    /// Idle buffers of the small size classes.
    free: HashMap<usize, Vec<R>>,
    /// Idle large buffers (class, region), least recently returned first.
    large: Vec<(usize, R)>,
    idle: usize,
    registered: usize,
}

struct Shared<A: Allocator> {
    alloc: A,
    max_idle: usize,
    state: Mutex<State<A::Region>>,
}

/// A pool of receive buffers from `A`. Cheap to clone.
pub struct BufferPool<A: Allocator> {
    shared: Arc<Shared<A>>,
}

impl<A: Allocator> Clone for BufferPool<A> {
    fn clone(&self) -> Self {
        BufferPool {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Allocator> std::fmt::Debug for BufferPool<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.state.lock();
        write!(
            f,
            "BufferPool(idle {} B, allocated {} B)",
            s.idle, s.registered
        )
    }
}

impl<A: Allocator> BufferPool<A> {
    /// A pool keeping at most `max_idle` idle bytes.
    pub fn new(alloc: A, max_idle: usize) -> Self {
        BufferPool {
            shared: Arc::new(Shared {
                alloc,
                max_idle,
                state: Mutex::new(State {
                    free: HashMap::new(),
                    large: Vec::new(),
                    idle: 0,
                    registered: 0,
                }),
            }),
        }
    }

    /// The allocator (e.g. the fabric context the buffers are registered with).
    pub fn allocator(&self) -> &A {
        &self.shared.alloc
    }

    /// A buffer of exactly `len` usable bytes (backed by a larger class).
    pub fn acquire(&self, len: usize) -> Result<PoolBuf<A>> {
        self.acquire_at(len, 0)
    }

    /// A buffer of `len` usable bytes that start `start` bytes into its
    /// region (to give them a chosen page phase).
    pub fn acquire_at(&self, len: usize, start: usize) -> Result<PoolBuf<A>> {
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
                let r = self.shared.alloc.allocate(class)?;
                assert!(r.len() >= class, "allocator returned a short region");
                self.shared.state.lock().registered += class;
                r
            }
        };
        Ok(PoolBuf {
            region: Some(region),
            class,
            start,
            len,
            pool: Arc::downgrade(&self.shared),
        })
    }

    /// Bytes allocated by the pool (idle and in use).
    pub fn allocated_bytes(&self) -> usize {
        self.shared.state.lock().registered
    }

    /// Bytes idle in the pool.
    pub fn idle_bytes(&self) -> usize {
        self.shared.state.lock().idle
    }

    /// Release every idle buffer.
    pub fn clear(&self) {
        let mut s = self.shared.state.lock();
        let free = std::mem::take(&mut s.free);
        let large = std::mem::take(&mut s.large);
        s.registered -= s.idle;
        s.idle = 0;
        drop(s);
        drop((free, large)); // released outside the lock
    }
}

/// A buffer of `len` bytes from a [`BufferPool`], returned to it on drop.
pub struct PoolBuf<A: Allocator> {
    region: Option<A::Region>,
    class: usize,
    /// Offset of the usable bytes in the region.
    start: usize,
    len: usize,
    pool: Weak<Shared<A>>,
}

impl<A: Allocator> std::fmt::Debug for PoolBuf<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PoolBuf({} at {} of {} B)",
            self.len, self.start, self.class
        )
    }
}

impl<A: Allocator> PoolBuf<A> {
    /// The region (and its registration) holding the buffer.
    pub fn region(&self) -> &A::Region {
        self.region.as_ref().expect("region present until drop")
    }

    /// Start of the usable bytes (a fabric's RMA destination).
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: `start + len` is at most the class size, which the region
        // holds (acquire_at), so the offset stays inside the region.
        unsafe { self.region().as_ptr().add(self.start) }
    }

    /// Usable length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no usable bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region holds `start + len` initialised (pre-faulted or
        // written) bytes, and while a `PoolBuf` is reachable no fabric writes
        // into it (an RMA request owns the buffer while in flight).
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// The buffer's bytes, mutably (socket receives).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len) }
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

struct View<A: Allocator> {
    buf: PoolBuf<A>,
    range: std::ops::Range<usize>,
}

impl<A: Allocator> AsRef<[u8]> for View<A> {
    fn as_ref(&self) -> &[u8] {
        &self.buf.as_slice()[self.range.clone()]
    }
}

impl<A: Allocator> Drop for PoolBuf<A> {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        let Some(pool) = self.pool.upgrade() else {
            return; // the pool is gone: release the region here
        };
        let max_idle = pool.max_idle;
        let mut release = Vec::new();
        let mut s = pool.state.lock();
        if self.class > LARGE && self.class <= max_idle {
            // Make room by releasing the least recently returned large buffers.
            while s.idle + self.class > max_idle && !s.large.is_empty() {
                let (c, r) = s.large.remove(0);
                s.idle -= c;
                s.registered -= c;
                release.push(r);
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
            release.push(region);
        }
        drop(s);
        drop(release); // released outside the lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn recycles_within_limit() {
        let pool = BufferPool::new(AnonAllocator, 64 << 20);
        let mut a = pool.acquire(20 << 20).unwrap();
        a.as_mut_slice()[0] = 42;
        let a = a.into_bytes(0..20 << 20);
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(pool.idle_bytes(), 20 << 20);
        // Reused for a fitting size; too small for a larger one.
        let b = pool.acquire(19 << 20).unwrap().into_bytes(0..1);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(pool.idle_bytes(), 0);
        let c = pool.acquire(40 << 20).unwrap();
        assert_ne!(c.as_ptr().cast_const(), ptr);
        drop((b, c));
        // 20 + 40 MiB idle (limit 64): both kept; a third large one pushes the oldest out.
        assert_eq!(pool.idle_bytes(), 60 << 20);
        drop(pool.acquire(30 << 20).unwrap());
        assert!(pool.idle_bytes() <= 64 << 20);
        // Small classes are reused exactly.
        let s = pool.acquire(100).unwrap();
        let sp = s.as_ptr();
        drop(s);
        assert_eq!(pool.acquire(4000).unwrap().as_ptr(), sp);
        pool.clear();
        assert_eq!((pool.idle_bytes(), pool.allocated_bytes()), (0, 0));
    }

    #[test]
    fn buffer_outlives_pool() {
        let pool = BufferPool::new(AnonAllocator, 8 << 20);
        let b = pool.acquire(2 << 20).unwrap().into_bytes(0..2 << 20);
        drop(pool);
        assert_eq!(b.len(), 2 << 20);
        assert!(b.iter().all(|&x| x == 0));
    }
}
