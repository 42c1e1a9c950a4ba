//! Receive buffers for large values, recycled.
//!
//! A fresh buffer is faulted in 4 KiB page by page as the socket data is
//! copied into it, which costs about as much as the transfer itself here
//! (~1 GB/s, see `shared/docs/measured-baselines.md`). Values of
//! [`POOL_THRESHOLD`] bytes and more are therefore received into anonymous
//! mappings that go back to a per-connector pool when the last [`Bytes`]
//! referring to them is dropped; the next large get reuses one (already
//! faulted in) if one of a fitting size is idle. The pool keeps at most a
//! configured number of bytes idle (`recv_pool_bytes`, default 256 MiB; 0
//! disables it); anything beyond is unmapped at once.
//!
//! Transparent huge pages are not requested: with the kernel's usual
//! `defrag=madvise`, an `MADV_HUGEPAGE` region faults through direct
//! compaction, and when earlier buffers are still held that stalled a
//! 100 MB get from ~0.17 s to ~0.55 s here.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

/// Values at least this large are received into pooled mappings.
pub(crate) const POOL_THRESHOLD: usize = 256 << 10;

/// Idle mappings of one connector.
#[derive(Debug)]
pub(crate) struct Pool {
    limit: usize,
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    maps: Vec<Mapping>,
    bytes: usize,
}

impl Pool {
    pub(crate) fn new(limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            limit,
            idle: Mutex::new(Idle::default()),
        })
    }

    /// An idle mapping of at least `len` (and at most twice `len`) bytes.
    fn take(&self, len: usize) -> Option<Mapping> {
        let mut idle = self.idle.lock();
        let i = idle
            .maps
            .iter()
            .enumerate()
            .filter(|(_, m)| m.len >= len && m.len / 2 <= len)
            .min_by_key(|(_, m)| m.len)
            .map(|(i, _)| i)?;
        let m = idle.maps.swap_remove(i);
        idle.bytes -= m.len;
        Some(m)
    }

    fn give(&self, m: Mapping) {
        let mut idle = self.idle.lock();
        if idle.bytes + m.len <= self.limit {
            idle.bytes += m.len;
            idle.maps.push(m);
        }
        // else: dropped (unmapped) here.
    }

    /// Drop every idle mapping.
    pub(crate) fn clear(&self) {
        *self.idle.lock() = Idle::default();
    }
}

/// A buffer of exactly `len` writable bytes.
pub(crate) enum RecvBuf {
    Heap(Vec<u8>),
    Pooled(PooledMapping, usize),
}

impl RecvBuf {
    pub(crate) fn new(len: usize, pool: &Arc<Pool>) -> RecvBuf {
        if len >= POOL_THRESHOLD {
            let map = pool.take(len).or_else(|| Mapping::new(len));
            if let Some(map) = map {
                return RecvBuf::Pooled(
                    PooledMapping {
                        map: Some(map),
                        pool: Arc::downgrade(pool),
                    },
                    len,
                );
            }
        }
        // Zeroed: large sizes come from calloc/mmap and need no memset.
        RecvBuf::Heap(vec![0u8; len])
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            RecvBuf::Heap(v) => v,
            RecvBuf::Pooled(p, len) => &mut p.as_mut()[..*len],
        }
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            RecvBuf::Heap(v) => Bytes::from(v),
            RecvBuf::Pooled(p, len) => Bytes::from_owner(p).slice(..len),
        }
    }
}

/// A mapping that returns to its pool (if the pool still exists) on drop.
pub(crate) struct PooledMapping {
    map: Option<Mapping>,
    pool: Weak<Pool>,
}

impl AsRef<[u8]> for PooledMapping {
    fn as_ref(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.as_ref(),
            None => &[],
        }
    }
}

impl AsMut<[u8]> for PooledMapping {
    fn as_mut(&mut self) -> &mut [u8] {
        match &mut self.map {
            Some(m) => m.as_mut(),
            None => &mut [],
        }
    }
}

impl Drop for PooledMapping {
    fn drop(&mut self) {
        if let (Some(m), Some(pool)) = (self.map.take(), self.pool.upgrade()) {
            pool.give(m);
        }
    }
}

/// An anonymous private read-write mapping of `len` bytes.
#[derive(Debug)]
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; it can be
// moved to and read from any thread.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads (`AsRef`); writes need `&mut self`.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize) -> Option<Mapping> {
        // SAFETY: a fresh anonymous mapping (no file, no fixed address); the
        // result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping { ptr, len })
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl AsMut<[u8]> for Mapping {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region this value mapped, once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_within_limit() {
        let pool = Pool::new(8 << 20);
        let mut a = RecvBuf::new(3 << 20, &pool);
        a.as_mut_slice()[0] = 42;
        let a = a.into_bytes();
        assert_eq!(a.len(), 3 << 20);
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(pool.idle.lock().bytes, 3 << 20);
        // Reused for a fitting size (the old contents are overwritten by the reader).
        let b = RecvBuf::new(2 << 20, &pool).into_bytes();
        assert_eq!((b.as_ptr(), b.len()), (ptr, 2 << 20));
        assert_eq!(pool.idle.lock().bytes, 0);
        // Too small a mapping for a larger value: a new one.
        drop(b);
        let c = RecvBuf::new(7 << 20, &pool).into_bytes();
        assert_ne!(c.as_ptr(), ptr);
        drop(c);
        // Over the limit: unmapped, not kept.
        assert_eq!(pool.idle.lock().bytes, 3 << 20);
        let small = RecvBuf::new(100, &pool).into_bytes();
        assert_eq!(small.len(), 100);
        pool.clear();
        assert_eq!(pool.idle.lock().bytes, 0);
    }

    #[test]
    fn pool_gone_before_buffer() {
        let pool = Pool::new(8 << 20);
        let b = RecvBuf::new(2 << 20, &pool).into_bytes();
        drop(pool);
        assert_eq!(b.len(), 2 << 20);
        drop(b); // unmapped, no pool to return to
    }
}
