//! Segment memory and the narrow, bounds-checked access the arena needs.
//!
//! A [`Memory`] is page memory that never moves while it lives: an
//! anonymous mapping of the server's own, or an allocation of a fabric
//! (UCX's `ucp_mem_map`). The arena hands out disjoint slots of it; the only
//! raw pointer arithmetic on registered memory in the object server is here.
//!
//! Segments of a server that serves same-node readers without a copy are in
//! shared memory: a fabric's allocation (UCX's System V segments), or
//! [`Memory::shared`], an anonymous shared-memory file (`memfd`) mapped
//! here, which a reader on this node opens through `/proc/PID/fd/FD`; either
//! way the reader maps it read-only (see `client::mapped`). Pin pages
//! (`PinWords`) are the words readers write the objects they hold into.

use std::any::Any;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use proxy_core::mem::{Mmap, Region};

use crate::hugepages::{self, Backing};
use crate::proto::ShmSegment;

/// Segment memory backed by a `memfd`, mapped shared: readers on this node
/// map the same pages (read-only) by opening the file through `/proc`.
struct SharedFile {
    map: Mmap,
    file: File,
    ino: u64,
    dev: u64,
}

impl SharedFile {
    /// A fresh `memfd` of `len` bytes (from the huge-page pool with
    /// `hugetlb`: `len` a multiple of its page size), mapped shared, not
    /// faulted in yet. Mapping a hugetlb file reserves its pages (ENOMEM
    /// when the pool has too few), so no later fault finds the pool empty.
    fn create(name: &CString, len: usize, hugetlb: bool) -> std::io::Result<SharedFile> {
        let flags = libc::MFD_CLOEXEC | if hugetlb { libc::MFD_HUGETLB } else { 0 };
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        let meta = file.metadata()?;
        Ok(SharedFile {
            map: Mmap::shared(&file, len, false)?,
            ino: meta.ino(),
            dev: meta.dev(),
            file,
        })
    }
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
    /// From the huge-page pool, or transparent huge pages asked for
    /// (`hugepages.rs`).
    huge: bool,
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
            huge: false,
            owner: Box::new(owner),
        }
    }

    /// `len` bytes of anonymous memory mapped by the server, in transparent
    /// huge pages where the system offers them (`hugepages.rs`).
    pub fn anonymous(len: usize, prefault: bool) -> std::io::Result<Memory> {
        let map = Mmap::anonymous(len, false)?;
        let huge = hugepages::advise(map.as_ptr(), map.len(), Backing::Anonymous);
        if prefault {
            map.prefault();
        }
        Ok(Memory::new(map).with_huge_pages(huge))
    }

    /// `len` bytes of a fresh anonymous shared-memory file (`memfd`, named
    /// `name` in `/proc/PID/fd`), mapped shared: what same-node readers map.
    /// From the system's huge-page pool when it has room and `len` is a
    /// whole number of its pages (`MFD_HUGETLB`), else in transparent huge
    /// pages where offered, else in 4 KiB pages (`hugepages.rs`).
    pub fn shared(len: usize, prefault: bool, name: &str) -> std::io::Result<Memory> {
        let cname = CString::new(name).map_err(std::io::Error::other)?;
        // The pool can be taken by another process between the look and the
        // mapping, which reserves its pages: then the fallback.
        let pooled = hugepages::pool_fits(len)
            .then(|| SharedFile::create(&cname, len, true).ok())
            .flatten();
        let (f, huge) = match pooled {
            Some(f) => (f, true),
            None => {
                let f = SharedFile::create(&cname, len, false)?;
                let huge = hugepages::advise(f.map.as_ptr(), f.map.len(), Backing::Shmem);
                (f, huge)
            }
        };
        // After the advice: pages faulted before it stay small.
        if prefault {
            f.map.prefault();
        }
        Ok(Memory::new(f).with_huge_pages(huge))
    }

    fn with_huge_pages(mut self, huge: bool) -> Memory {
        self.huge = huge;
        self
    }

    /// Ask for transparent huge pages for memory mapped elsewhere (a
    /// fabric's allocation; `shared`: shared memory), where the system
    /// offers them. Pages faulted in already stay small until the kernel's
    /// `khugepaged` collapses them.
    pub(crate) fn advise_huge_pages(&mut self, shared: bool) {
        let backing = if shared {
            Backing::Shmem
        } else {
            Backing::Anonymous
        };
        self.huge = hugepages::advise(self.ptr, self.len, backing);
    }

    /// Whether this memory is in huge pages of the system's pool (made by
    /// [`Memory::shared`]), or transparent huge pages were asked for and the
    /// kernel took the advice. (A fabric's allocation from the pool, such as
    /// UCX's System V segments, is not known here.)
    pub fn huge_pages(&self) -> bool {
        self.huge
    }

    /// Where a same-node reader finds this memory: the server's own shared
    /// file, or the shared memory a fabric allocated it in (a System V
    /// segment, or a file under `/dev/shm` the process keeps open), found
    /// in `/proc/self/maps`. `None`: private memory.
    pub(crate) fn shm(&self) -> Option<ShmSegment> {
        if let Some(f) = self.owner.downcast_ref::<SharedFile>() {
            return Some(ShmSegment::File {
                fd: f.file.as_raw_fd(),
                ino: f.ino,
                dev: f.dev,
                offset: 0,
            });
        }
        find_backing(self.ptr as u64, self.len as u64)
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

/// Make System V segment `shmid` (which a fabric created for this process)
/// accessible to this user only: fabrics create them for their group too
/// (UCX: 0660), and the server's memory is its job's alone.
fn make_sysv_private(shmid: i32) {
    // SAFETY: an all-zero shmid_ds is a valid out-parameter.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid shmid_ds for IPC_STAT to fill.
    if unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) } != 0 {
        return;
    }
    if ds.shm_perm.mode & 0o077 != 0 {
        ds.shm_perm.mode &= 0o700;
        // SAFETY: IPC_SET with the values just read, mode narrowed; this
        // process created the segment (or the call fails harmlessly).
        unsafe { libc::shmctl(shmid, libc::IPC_SET, &mut ds) };
    }
}

/// The shared memory backing `[start, start + len)` of this process, if one
/// shared mapping of a System V segment or of an open file covers it all.
fn find_backing(start: u64, len: u64) -> Option<ShmSegment> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, perms, off, _dev, ino) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.collect::<Vec<_>>().join(" ");
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        );
        if start < a || start >= b {
            continue;
        }
        if start + len > b || perms.as_bytes().get(3) != Some(&b's') {
            return None;
        }
        let offset = u64::from_str_radix(off, 16).ok()? + (start - a);
        let ino: u64 = ino.parse().ok()?;
        if path.starts_with("/SYSV") {
            let shmid = i32::try_from(ino).ok()?;
            make_sysv_private(shmid);
            return Some(ShmSegment::SysV { shmid, offset });
        }
        // A file: one of this process's descriptors must have it open.
        for e in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Ok(link) = std::fs::read_link(e.path()) else {
                continue;
            };
            if link.as_os_str().to_string_lossy() != path {
                continue;
            }
            let Ok(meta) = std::fs::metadata(e.path()) else {
                continue;
            };
            let fd = e.file_name().to_str().and_then(|n| n.parse().ok());
            if let (Some(fd), true) = (fd, meta.ino() == ino) {
                // A fabric's file (e.g. under /dev/shm): this user's only.
                if meta.mode() & 0o077 != 0 {
                    // SAFETY: fchmod on a descriptor this process has open.
                    unsafe { libc::fchmod(fd, meta.mode() & 0o700) };
                }
                return Some(ShmSegment::File {
                    fd,
                    ino,
                    dev: meta.dev(),
                    offset,
                });
            }
        }
        return None;
    }
    None
}

/// A System V shared-memory segment of another process, attached read-only
/// here (detached on drop).
pub(crate) struct SysvAttach {
    ptr: *const u8,
    len: usize,
    /// Attached read-write ([`SysvAttach::attach_writable`]).
    writable: bool,
}

// SAFETY: an attachment owned by this value; nothing per thread.
unsafe impl Send for SysvAttach {}
// SAFETY: only read through `&self`; written only through `&mut self`.
unsafe impl Sync for SysvAttach {}

impl SysvAttach {
    /// Attach segment `shmid` read-only, if process `creator` created it
    /// and it has at least `min_len` bytes. No page is faulted in: readers
    /// populate what they read ([`SysvAttach::populate_read`]).
    pub(crate) fn attach(shmid: i32, creator: u32, min_len: u64) -> std::io::Result<SysvAttach> {
        Self::attach_with(shmid, creator, min_len, false)
    }

    /// [`SysvAttach::attach`] read-write (a same-node writer's puts).
    pub(crate) fn attach_writable(
        shmid: i32,
        creator: u32,
        min_len: u64,
    ) -> std::io::Result<SysvAttach> {
        Self::attach_with(shmid, creator, min_len, true)
    }

    fn attach_with(
        shmid: i32,
        creator: u32,
        min_len: u64,
        writable: bool,
    ) -> std::io::Result<SysvAttach> {
        // SAFETY: an all-zero shmid_ds is a valid out-parameter.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes into `ds`, which is valid.
        if unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if ds.shm_cpid as u32 != creator || (ds.shm_segsz as u64) < min_len {
            return Err(std::io::Error::other(
                "the System V segment is not the server's",
            ));
        }
        let flags = if writable { 0 } else { libc::SHM_RDONLY };
        // SAFETY: attach at an address of the kernel's choice (read-only
        // unless `writable`); the result is checked below.
        let p = unsafe { libc::shmat(shmid, std::ptr::null(), flags) };
        if p as isize == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SysvAttach {
            ptr: p.cast(),
            len: ds.shm_segsz,
            writable,
        })
    }

    /// Fault the pages of `[offset, offset + len)` in for reading, in one
    /// call (`MADV_POPULATE_READ`, Linux 5.14+; best effort: elsewhere pages
    /// fault in on first use). Clipped to the segment.
    pub(crate) fn populate_read(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return;
        }
        let start = offset & !4095; // shmat attaches page aligned
        // SAFETY: [ptr + start, ptr + end) lies inside the attached segment;
        // populating pages for reading changes neither the attachment nor
        // its contents.
        unsafe {
            libc::madvise(
                self.ptr.add(start).cast_mut().cast(),
                end - start,
                libc::MADV_POPULATE_READ,
            )
        };
    }

    /// The attached bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the segment is attached (readable) at `ptr` for `len`
        // bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The attached bytes, writable (`None` if attached read-only).
    pub(crate) fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        // SAFETY: the segment is attached read-write at `ptr` for `len`
        // bytes until drop, and `&mut self` makes this the only access
        // through this attachment.
        self.writable
            .then(|| unsafe { std::slice::from_raw_parts_mut(self.ptr.cast_mut(), self.len) })
    }
}

impl Drop for SysvAttach {
    fn drop(&mut self) {
        // SAFETY: detaching exactly what `attach` attached, once.
        unsafe { libc::shmdt(self.ptr.cast()) };
    }
}

/// Slots of a pin page: ids of objects a same-node reader holds.
pub const PIN_SLOTS: usize = 8192;

/// A pin page: a small shared-memory file of [`PIN_SLOTS`] words, one per
/// connection of a same-node reader, who writes the ids of the objects it
/// holds into it (0: free) and the server reads them before it frees an
/// evicted object's slot (see `client::mapped`).
pub(crate) struct PinWords {
    map: Mmap,
    /// The server's file (`None` in the reader).
    file: Option<(File, u64, u64)>,
}

impl PinWords {
    /// A fresh page (the server's).
    pub(crate) fn create() -> std::io::Result<PinWords> {
        let len = PIN_SLOTS * 8;
        let cname = CString::new("proxystore-pins").map_err(std::io::Error::other)?;
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        let meta = file.metadata()?;
        let map = Mmap::shared(&file, len, true)?;
        Ok(PinWords {
            map,
            file: Some((file, meta.ino(), meta.dev())),
        })
    }

    /// The server's page `f` (opened read-write through `/proc`), mapped
    /// in the reader.
    pub(crate) fn open(f: &File) -> std::io::Result<PinWords> {
        Ok(PinWords {
            map: Mmap::shared(f, PIN_SLOTS * 8, false)?,
            file: None,
        })
    }

    /// Where a reader opens it (the server's page only).
    pub(crate) fn shm(&self) -> Option<ShmSegment> {
        self.file.as_ref().map(|(f, ino, dev)| ShmSegment::File {
            fd: f.as_raw_fd(),
            ino: *ino,
            dev: *dev,
            offset: 0,
        })
    }

    /// The words.
    pub(crate) fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping is page aligned, `PIN_SLOTS * 8` bytes long and
        // lives as long as `self`; other processes access it only through
        // atomic operations on the same words.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().cast::<std::sync::atomic::AtomicU64>(),
                PIN_SLOTS,
            )
        }
    }

    /// Whether a reader holds object `id`.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.words()
            .iter()
            .any(|w| w.load(std::sync::atomic::Ordering::SeqCst) == id)
    }

    /// Objects held (counting repeats).
    pub(crate) fn count(&self) -> u64 {
        self.words()
            .iter()
            .filter(|w| w.load(std::sync::atomic::Ordering::Relaxed) != 0)
            .count() as u64
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

/// A reserved slot's payload filled front to back by one writer while
/// readers copy out what is filled (a replica being relayed on: see
/// `server/replica.rs`). The holder keeps the mark between the two: bytes
/// below it are written once and never again, bytes above it are the
/// writer's alone.
pub(crate) struct FillSlot {
    mem: Arc<Memory>,
    offset: u64,
    len: usize,
}

impl FillSlot {
    pub(crate) fn new(w: SlotWriter) -> FillSlot {
        FillSlot {
            mem: w.mem,
            offset: w.offset,
            len: w.len,
        }
    }

    /// The payload length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The payload bytes `[from, to)`, writable.
    ///
    /// # Safety
    /// Nobody else reads or writes `[from, to)` while the slice lives: the
    /// caller is the slot's one writer and the range is above the filled mark.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn unfilled(&self, from: usize, to: usize) -> &mut [u8] {
        assert!(
            from <= to && to <= self.len,
            "range {from}..{to} of {}",
            self.len
        );
        // SAFETY: in bounds (checked at creation and above); exclusive by the
        // caller's contract; the memory is kept alive by the Arc.
        unsafe {
            std::slice::from_raw_parts_mut(self.mem.ptr.add(self.offset as usize + from), to - from)
        }
    }

    /// The payload bytes `[from, to)`.
    ///
    /// # Safety
    /// `[from, to)` is below the filled mark (written, and never written
    /// again while the slice lives).
    pub(crate) unsafe fn filled(&self, from: usize, to: usize) -> &[u8] {
        assert!(
            from <= to && to <= self.len,
            "range {from}..{to} of {}",
            self.len
        );
        // SAFETY: in bounds; nobody writes the range (caller's contract); the
        // memory is kept alive by the Arc.
        unsafe {
            std::slice::from_raw_parts(self.mem.ptr.add(self.offset as usize + from), to - from)
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
