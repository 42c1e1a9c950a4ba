//! Memory that the library owns: page mappings ([`Mmap`]) and a pool of
//! reusable, pre-faulted receive buffers ([`BufferPool`]) that every
//! connector shares, whatever registers the memory underneath (an RDMA
//! fabric's registration, or none for plain sockets).
//!
//! The raw pointers of registered memory stay behind these types: callers
//! get slices, `Bytes` ([`PoolBuf::into_bytes`], no copy) and, for fabrics,
//! the start address of a region they registered themselves.

mod aligned;
mod hugetlb;
mod inotify;
mod mmap;
mod pool;

pub use aligned::{ALIGN, AlignedBuf};
pub use hugetlb::huge_page_pool;
pub use inotify::DirWatch;
pub use mmap::Mmap;
pub use pool::{Allocator, AnonAllocator, BufferPool, LARGE, PoolBuf, Region, size_class};
