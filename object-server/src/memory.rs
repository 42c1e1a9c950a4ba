//! Segment memory and the narrow, bounds-checked access the arena needs.
//!
//! A [`Memory`] is page memory that never moves while it lives: an
//! anonymous mapping of the server's own, or an allocation of a fabric
//! (UCX's `ucp_mem_map`). The arena hands out disjoint slots of it; the only
//! raw pointer arithmetic on registered memory in the object server is here.
//!
//! Segments of a server that serves same-node readers without a copy are
//! [`Memory::shared`]: an anonymous shared-memory file (`memfd`) mapped
//! here, which a reader on this node opens through `/proc/PID/fd/FD` and
//! maps read-only (see `client::mapped`).

use std::any::Any;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use proxy_core::mem::{Mmap, Region};

use crate::proto::ShmSegment;

/// Segment memory backed by a `memfd`, mapped shared: readers on this node
/// map the same pages (read-only) by opening the file through `/proc`.
struct SharedFile {
    map: Mmap,
    file: File,
    ino: u64,
    dev: u64,
}

// SAFETY: a shared file mapping stays in place, readable and writable, until
// dropped (the file outlives nothing it needs: the mapping holds the pages).
unsafe impl Region for SharedFile {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Segment memory owned by the server (shared by its registrations).
pub struct Memory {
    ptr: *mut u8,
    len: usize,
    owner: Box<dyn Any + Send + Sync>,
}

// SAFETY: the memory is owned by `owner` (Send + Sync) and stays in place;
// concurrent access is confined to disjoint slots by the arena (writes), or
// is a read of bytes that no one writes (pinned objects).
unsafe impl Send for Memory {}
// SAFETY: as for Send.
unsafe impl Sync for Memory {}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memory({:p}, {} B)", self.ptr, self.len)
    }
}

impl Memory {
    /// Wrap memory owned by `owner` (a mapping or a fabric's allocation).
    pub fn new<R: Region + Any>(owner: R) -> Memory {
        Memory {
            ptr: owner.as_ptr(),
            len: owner.len(),
            owner: Box::new(owner),
        }
    }

    /// `len` bytes of anonymous memory mapped by the server.
    pub fn anonymous(len: usize, prefault: bool) -> std::io::Result<Memory> {
        Mmap::anonymous(len, prefault).map(Memory::new)
    }

    /// `len` bytes of a fresh anonymous shared-memory file (`memfd`, named
    /// `name` in `/proc/PID/fd`), mapped shared: what same-node readers map.
    pub fn shared(len: usize, prefault: bool, name: &str) -> std::io::Result<Memory> {
        let cname = CString::new(name).map_err(std::io::Error::other)?;
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        let meta = file.metadata()?;
        let map = Mmap::shared(&file, len, prefault)?;
        Ok(Memory::new(SharedFile {
            map,
            ino: meta.ino(),
            dev: meta.dev(),
            file,
        }))
    }

    /// Where a same-node reader finds this memory's file (shared memory only).
    pub(crate) fn shm(&self) -> Option<ShmSegment> {
        self.owner.downcast_ref::<SharedFile>().map(|f| ShmSegment {
            fd: f.file.as_raw_fd(),
            ino: f.ino,
            dev: f.dev,
        })
    }

    /// Start address (for registering it with a fabric, and for descriptors).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What owns the memory (a transport recognises its own allocations).
    pub fn owner(&self) -> &(dyn Any + Send + Sync) {
        &*self.owner
    }

    fn check(&self, offset: u64, len: usize) -> usize {
        let off = usize::try_from(offset).expect("offset fits in memory");
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len),
            "range {off}+{len} outside a segment of {} bytes",
            self.len
        );
        off
    }

    /// Copy `src` to `offset`. The arena calls it only on ranges it
    /// reserved for the caller (disjoint from every other writer).
    pub(crate) fn write(&self, offset: u64, src: &[u8]) {
        let off = self.check(offset, src.len());
        // SAFETY: in bounds (checked); the range is reserved for this writer
        // and caller memory never overlaps a segment.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(off), src.len()) };
    }

    /// Zero `len` bytes at `offset` with volatile stores: one-sided readers
    /// may read them at the same time and must see either value.
    pub(crate) fn zero_volatile(&self, offset: u64, len: usize) {
        let off = self.check(offset, len);
        for i in 0..len {
            // SAFETY: in bounds (checked); a byte store to our own memory.
            unsafe { std::ptr::write_volatile(self.ptr.add(off + i), 0) };
        }
    }
}

/// Copy `src`, memory another process may write at the same time (a mapped
/// segment of the server), into `dst` (as long) with volatile reads: the
/// compiler neither elides them nor merges them with reads after a fence
/// (readers re-check the header after the copy, see `layout`).
pub(crate) fn copy_shared(src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), dst.len(), "copy_shared: lengths differ");
    let words = if src.as_ptr().align_offset(8) == 0 {
        src.len() / 8
    } else {
        0
    };
    let p = src.as_ptr();
    for i in 0..words {
        // SAFETY: in bounds (i * 8 + 8 <= len) and 8-byte aligned (checked);
        // a plain load of mapped memory, which another process may change
        // (the caller checks the bytes afterwards, never trusts them as is).
        let w = unsafe { std::ptr::read_volatile(p.add(i * 8).cast::<u64>()) };
        dst[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    for (i, d) in dst.iter_mut().enumerate().skip(words * 8) {
        // SAFETY: in bounds (i < len); a byte load of mapped memory (as above).
        *d = unsafe { std::ptr::read_volatile(p.add(i)) };
    }
}

/// Exclusive write access to a reserved slot's payload, until commit or abort.
#[derive(Debug)]
pub struct SlotWriter {
    mem: Arc<Memory>,
    offset: u64,
    len: usize,
}

impl SlotWriter {
    /// Only the arena makes one, for a range it reserved for the holder.
    pub(crate) fn new(mem: Arc<Memory>, offset: u64, len: usize) -> SlotWriter {
        mem.check(offset, len);
        SlotWriter { mem, offset, len }
    }

    /// The payload bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let off = self.offset as usize;
        // SAFETY: in bounds (checked at creation); the range is reserved for
        // this writer alone until commit/abort, which consume it; the memory
        // is kept alive by the Arc.
        unsafe { std::slice::from_raw_parts_mut(self.mem.ptr.add(off), self.len) }
    }

    /// Copy `parts` one after another into the payload.
    pub fn copy_parts(&mut self, parts: &[bytes::Bytes]) {
        let dst = self.as_mut_slice();
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }
}

/// Shared read access to a pinned object's payload: nobody writes or frees
/// it until the pin is released.
pub(crate) struct PinnedSlice {
    mem: Arc<Memory>,
    offset: u64,
    len: usize,
}

impl PinnedSlice {
    pub(crate) fn new(mem: Arc<Memory>, offset: u64, len: usize) -> PinnedSlice {
        mem.check(offset, len);
        PinnedSlice { mem, offset, len }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds (checked at creation); the object is pinned, so
        // its payload is neither rewritten nor freed while this exists.
        unsafe { std::slice::from_raw_parts(self.mem.ptr.add(self.offset as usize), self.len) }
    }
}
