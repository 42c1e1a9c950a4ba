//! The buffers objects are read into: the process's receive pool (shared by
//! every DAOS connector) for objects of 64 KiB and more, the heap below.

use std::sync::OnceLock;

use bytes::Bytes;
use proxy_core::Result;
use proxy_core::mem::{AnonAllocator, BufferPool, PoolBuf};

/// Objects from this size on are read into receive-pool buffers.
const POOL_THRESHOLD: usize = 64 << 10;
/// Idle bytes the process's receive pool keeps.
const RECV_POOL_IDLE: usize = 512 << 20;

/// The process's receive pool (shared by every DAOS connector).
fn recv_pool() -> &'static BufferPool<AnonAllocator> {
    static POOL: OnceLock<BufferPool<AnonAllocator>> = OnceLock::new();
    POOL.get_or_init(|| BufferPool::new(AnonAllocator, RECV_POOL_IDLE))
}

/// Bytes the process's DAOS receive pool holds (in use and idle): the
/// memory `get` reads into.
pub fn recv_pool_allocated_bytes() -> usize {
    recv_pool().allocated_bytes()
}

/// A buffer an object is read into.
pub(crate) enum Dest {
    None,
    Heap(Vec<u8>),
    Pooled(PoolBuf<AnonAllocator>),
}

impl Dest {
    pub(crate) fn new(len: usize) -> Result<Dest> {
        Ok(if len == 0 {
            Dest::None
        } else if len >= POOL_THRESHOLD {
            Dest::Pooled(recv_pool().acquire(len)?)
        } else {
            Dest::Heap(vec![0u8; len])
        })
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Dest::None => Bytes::new(),
            Dest::Heap(v) => Bytes::from(v),
            Dest::Pooled(b) => {
                let len = b.len();
                b.into_bytes(0..len)
            }
        }
    }
}
