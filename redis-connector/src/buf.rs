//! Receive buffers for large values, recycled through the workspace's one
//! receive-buffer pool (`proxy_core::mem::BufferPool`, the same reuse policy
//! as the RMA connectors' registered buffers, over plain anonymous mappings).
//!
//! A fresh buffer is faulted in 4 KiB page by page as the socket data is
//! copied into it, which costs about as much as the transfer itself (~1 GB/s
//! on the 2-core test machine). Values of [`POOL_THRESHOLD`] bytes and more
//! are therefore received into pooled, pre-faulted mappings that go back to
//! the connector's pool when the last [`Bytes`] referring to them is dropped;
//! the next large get reuses one. The pool keeps at most a configured number
//! of bytes idle (`recv_pool_bytes`, default 256 MiB; 0 disables it).
//!
//! Transparent huge pages are not requested: with the kernel's usual
//! `defrag=madvise`, an `MADV_HUGEPAGE` region faults through direct
//! compaction, and when earlier buffers are still held that stalled a
//! 100 MB get from ~0.17 s to ~0.55 s.

use bytes::Bytes;
use proxy_core::mem::{AlignedBuf, AnonAllocator, BufferPool, PoolBuf};

/// Values at least this large are received into pooled mappings.
pub(crate) const POOL_THRESHOLD: usize = 256 << 10;

/// The receive pool of one connector.
#[derive(Debug)]
pub(crate) struct Pool(BufferPool<AnonAllocator>);

impl Pool {
    /// A pool keeping at most `limit` idle bytes.
    pub(crate) fn new(limit: usize) -> std::sync::Arc<Pool> {
        std::sync::Arc::new(Pool(BufferPool::new(AnonAllocator, limit)))
    }

    /// Release every idle buffer.
    pub(crate) fn clear(&self) {
        self.0.clear();
    }
}

/// A buffer of exactly `len` writable bytes, starting on a 64-byte boundary
/// (pooled mappings start on a page), so that payloads after the codec's
/// padded header are aligned (`proxy_core::codec::PAYLOAD_ALIGN`).
pub(crate) enum RecvBuf {
    Heap(AlignedBuf),
    Pooled(PoolBuf<AnonAllocator>),
}

impl RecvBuf {
    pub(crate) fn new(len: usize, pool: &Pool) -> RecvBuf {
        if len >= POOL_THRESHOLD {
            if let Ok(b) = pool.0.acquire(len) {
                return RecvBuf::Pooled(b);
            }
        }
        RecvBuf::Heap(AlignedBuf::zeroed(len))
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            RecvBuf::Heap(v) => v.as_mut_slice(),
            RecvBuf::Pooled(b) => b.as_mut_slice(),
        }
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            RecvBuf::Heap(v) => v.into_bytes(),
            RecvBuf::Pooled(b) => {
                let len = b.len();
                b.into_bytes(0..len)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_reuse_pooled_buffers() {
        let pool = Pool::new(8 << 20);
        let mut a = RecvBuf::new(3 << 20, &pool);
        assert!(matches!(a, RecvBuf::Pooled(_)));
        a.as_mut_slice()[0] = 42;
        let a = a.into_bytes();
        assert_eq!((a.len(), a[0]), (3 << 20, 42));
        let ptr = a.as_ptr();
        drop(a);
        assert!(pool.0.idle_bytes() >= 3 << 20);
        let b = RecvBuf::new(3 << 20, &pool).into_bytes();
        assert_eq!((b.as_ptr(), b.len()), (ptr, 3 << 20));
        // Small values are heap buffers; every buffer is aligned.
        assert!(matches!(RecvBuf::new(100, &pool), RecvBuf::Heap(_)));
        for len in [1, 100, 3 << 20] {
            let b = RecvBuf::new(len, &pool).into_bytes();
            assert_eq!(b.as_ptr() as usize % 64, 0, "{len}");
        }
        drop(b);
        pool.clear();
        assert_eq!(pool.0.idle_bytes(), 0);
    }

    #[test]
    fn pool_gone_before_buffer() {
        let pool = Pool::new(8 << 20);
        let b = RecvBuf::new(2 << 20, &pool).into_bytes();
        drop(pool);
        assert_eq!(b.len(), 2 << 20);
    }
}
