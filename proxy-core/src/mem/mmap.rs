//! The one `mmap(2)` wrapper of the workspace.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// A page mapping owned by this value: anonymous read-write memory
/// ([`Mmap::anonymous`]) or a read-only view of a file ([`Mmap::file`]).
/// Unmapped on drop; never moves.
#[derive(Debug)]
pub struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
    /// What the kernel mapped: `len` rounded up to the mapping's page size
    /// (a file on `hugetlbfs` is mapped in whole huge pages, and the kernel
    /// refuses to unmap part of one), what `munmap` is given.
    map_len: usize,
    writable: bool,
}

// SAFETY: the mapping is plain memory owned by this value alone; moving the
// owner to another thread moves nothing the kernel tracks per thread.
unsafe impl Send for Mmap {}
// SAFETY: `&Mmap` only reads (`as_slice`); writes need `&mut self`.
unsafe impl Sync for Mmap {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as usize
}

impl Mmap {
    /// `len` bytes (at least one page) of private anonymous read-write memory,
    /// zeroed. With `prefault`, every page is faulted in now (writable), so
    /// that neither this process nor a fabric reading it faults later.
    pub fn anonymous(len: usize, prefault: bool) -> io::Result<Mmap> {
        let len = len.max(1).div_ceil(page_size()) * page_size();
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
            return Err(io::Error::last_os_error());
        }
        let m = Mmap {
            ptr,
            len,
            map_len: len,
            writable: true,
        };
        if prefault {
            m.prefault();
        }
        Ok(m)
    }

    /// The first `len` bytes (`len > 0`) of `f`, read-only and shared,
    /// populated at once.
    pub fn file(f: &File, len: usize) -> io::Result<Mmap> {
        Self::file_read(f, len, true)
    }

    /// Map the first `len` bytes of `f` read-only without faulting any page
    /// in: for a large file of which a reader will touch a part, with
    /// [`Mmap::populate_read`] for the ranges it reads.
    pub fn file_lazy(f: &File, len: usize) -> io::Result<Mmap> {
        Self::file_read(f, len, false)
    }

    fn file_read(f: &File, len: usize, populate: bool) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        // SAFETY: mapping `len > 0` bytes of an open file read-only; the
        // result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | if populate { libc::MAP_POPULATE } else { 0 },
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr,
            len,
            map_len: mapped_len(f, len),
            writable: false,
        })
    }

    /// The first `len` bytes (`len > 0`) of `f` (opened read-write, at least
    /// `len` bytes long), mapped shared and writable: other processes that
    /// map the same file see the same pages. With `prefault`, every page is
    /// faulted in now (writable).
    pub fn shared(f: &File, len: usize, prefault: bool) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        // SAFETY: mapping `len > 0` bytes of an open file shared read-write;
        // the result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let m = Mmap {
            ptr,
            len,
            map_len: mapped_len(f, len),
            writable: true,
        };
        if prefault {
            m.prefault();
        }
        Ok(m)
    }

    /// Fault every page in, writable. `MADV_POPULATE_WRITE` (Linux 5.14+)
    /// has the kernel do it without a fault per page; elsewhere every page is
    /// written once (it is still zero: nobody else knows the mapping yet; a
    /// shared file is fresh, as its creator alone knows it yet). For a
    /// mapping made without `prefault`, before anyone else writes it.
    pub fn prefault(&self) {
        // SAFETY: the range is exactly this mapping (page aligned by mmap);
        // populating pages does not change their contents.
        let r = unsafe { libc::madvise(self.ptr, self.map_len, libc::MADV_POPULATE_WRITE) };
        if r != 0 {
            // SAFETY: [ptr, ptr + len) is this fresh writable mapping.
            unsafe { std::ptr::write_bytes(self.ptr.cast::<u8>(), 0, self.len) };
        }
    }

    /// Fault the pages of `[offset, offset + len)` of the mapping in, for
    /// reading, in one call (`MADV_POPULATE_READ`, Linux 5.14+: no fault per
    /// page later). Best effort: where the kernel cannot, pages fault in on
    /// first use. The range is clipped to the mapping.
    pub fn populate_read(&self, offset: usize, len: usize) {
        populate_read(self.ptr.cast(), self.len, offset, len);
    }

    /// Start of the mapping (for registering it with a fabric).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.cast()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (a mapping has at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    /// The mapped bytes, writable (`None` for a read-only file mapping).
    pub fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        // SAFETY: as in `as_slice`; the mapping is writable and `&mut self`
        // makes this the only access.
        self.writable
            .then(|| unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u8>(), self.len) })
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region this value mapped (in whole
        // pages of the mapping's size), once.
        unsafe {
            libc::munmap(self.ptr, self.map_len);
        }
    }
}

/// The length the kernel maps for `len` bytes of `f`: whole huge pages for
/// a file on `hugetlbfs` (a `memfd` made with `MFD_HUGETLB`), else `len`
/// (the kernel rounds it to base pages itself).
fn mapped_len(f: &File, len: usize) -> usize {
    const HUGETLBFS_MAGIC: libc::c_long = 0x9584_58f6;
    // SAFETY: an all-zero statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs of an open descriptor into `st`; the result is checked.
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 || st.f_type != HUGETLBFS_MAGIC {
        return len;
    }
    // hugetlbfs reports its page size as the block size.
    let huge = usize::try_from(st.f_bsize).unwrap_or(0).max(page_size());
    len.div_ceil(huge) * huge
}

/// `MADV_POPULATE_READ` over `[offset, offset + len)` of the mapping of
/// `map_len` bytes at `base` (page aligned), clipped to it.
fn populate_read(base: *const u8, map_len: usize, offset: usize, len: usize) {
    let end = offset.saturating_add(len).min(map_len);
    if offset >= end {
        return;
    }
    let page = page_size();
    let start = offset / page * page;
    // SAFETY: [base + start, base + end) lies inside the caller's mapping
    // (start <= offset < end <= map_len, `base` page aligned); populating
    // pages for reading changes neither the mapping nor its contents.
    unsafe {
        libc::madvise(
            base.add(start).cast_mut().cast(),
            end - start,
            libc::MADV_POPULATE_READ,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_is_zeroed_writable_and_page_sized() {
        let mut m = Mmap::anonymous(10, true).unwrap();
        assert!(m.len() >= 4096 && m.len() % 4096 == 0);
        assert!(m.as_slice().iter().all(|&b| b == 0));
        m.as_mut_slice().unwrap()[5] = 7;
        assert_eq!(m.as_slice()[5], 7);
    }

    #[test]
    fn file_mapping_is_read_only() {
        let dir = std::env::temp_dir().join(format!("mmap-test-{}", std::process::id()));
        std::fs::write(&dir, b"hello mapping").unwrap();
        let f = File::open(&dir).unwrap();
        let mut m = Mmap::file(&f, 13).unwrap();
        assert_eq!(m.as_slice(), b"hello mapping");
        assert!(m.as_mut_slice().is_none());
        assert!(Mmap::file(&f, 0).is_err());
        std::fs::remove_file(&dir).unwrap();
    }

    /// Whether `[addr, addr + 1)` is mapped in this process (`/proc/self/maps`).
    fn mapped(addr: usize) -> bool {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(' ')?.0.split_once('-'))
            .filter_map(|(a, b)| {
                Some(usize::from_str_radix(a, 16).ok()?..usize::from_str_radix(b, 16).ok()?)
            })
            .any(|r| r.contains(&addr))
    }

    /// A file from the huge-page pool (`memfd` with `MFD_HUGETLB`) mapped for
    /// fewer bytes than a huge page, read-only and writable, is unmapped
    /// whole on drop (the kernel refuses to unmap part of a huge page, which
    /// would leak the mapping). Runs where the pool has a free page or this
    /// process may add one (root); the pool is set back after.
    #[test]
    fn hugetlb_file_mappings_are_unmapped_whole() {
        let raised = crate::conformance::HugePagePool::raise(2);
        let run = || {
            // SAFETY: a NUL-terminated name and valid flags; checked below.
            let fd = unsafe {
                libc::memfd_create(
                    c"mmap-hugetlb-test".as_ptr(),
                    libc::MFD_CLOEXEC | libc::MFD_HUGETLB,
                )
            };
            if fd < 0 {
                return None;
            }
            // SAFETY: `fd` was just created and is owned by nothing else.
            let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            f.set_len(2 << 20).unwrap();
            assert_eq!(mapped_len(&f, 4097), 2 << 20);
            let mut w = Mmap::shared(&f, 4097, true).ok()?;
            w.as_mut_slice().unwrap()[4096] = 9;
            let r = Mmap::file_lazy(&f, 4097).unwrap();
            assert_eq!(r.as_slice()[4096], 9);
            let (wa, ra) = (w.as_ptr() as usize, r.as_ptr() as usize);
            assert!(mapped(wa) && mapped(ra));
            drop((w, r));
            assert!(!mapped(wa), "the writable mapping outlived its Mmap");
            assert!(!mapped(ra), "the read-only mapping outlived its Mmap");
            Some(())
        };
        let ran = run();
        if raised.is_some() {
            assert!(
                ran.is_some(),
                "huge pages were added to the pool, yet none could be mapped"
            );
        }
        drop(raised);
        // A file that is not on hugetlbfs: its length as given.
        let f = File::open("/proc/self/exe").unwrap();
        assert_eq!(mapped_len(&f, 4097), 4097);
    }
}
