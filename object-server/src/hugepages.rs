//! Huge pages for segment memory: a reader that touches a
//! 1 GiB object walks 512 2 MiB pages instead of 262,144 4 KiB ones (TLB
//! entries, page faults, `get_user_pages` of a cross-memory-attach read).
//!
//! Segments ask for them with `madvise(MADV_HUGEPAGE)` where the kernel
//! would honour it, before they are faulted in: anonymous memory when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`,
//! shared memory (`memfd`, System V, `/dev/shm`) when `shmem_enabled` is
//! `always`, `within_size`, `advise` or `force`. Elsewhere (`never`,
//! `deny`, no such files, a kernel that refuses) nothing is asked and
//! segments keep 4 KiB pages: the fallback is silent.
//!
//! Where the administrator has set aside a pool of huge pages
//! (`vm.nr_hugepages`, `HugePages_Free` in `/proc/meminfo`), shared segments
//! come from it first: a `memfd` made with `MFD_HUGETLB`, whose pages are
//! reserved when it is mapped (a pool too small for the segment is refused
//! there, and the segment falls back as above; no page is ever missing at
//! a later fault). UCX takes System V segments from the same pool
//! (`SHM_HUGETLB`, its `UCX_SYSV_HUGETLB_MODE=try` default; `n` leaves the
//! pool alone). `PROXYSTORE_HUGE_PAGES=off` in a process's environment keeps
//! the segments it maps itself from asking for either (to compare, or to
//! leave the pool to others).

use std::sync::OnceLock;

/// What backs a mapping, as far as THP policy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// Private anonymous memory (`THP enabled`).
    Anonymous,
    /// Shared memory: `memfd`, System V, `/dev/shm` (`shmem_enabled`).
    Shmem,
}

const SYS: &str = "/sys/kernel/mm/transparent_hugepage";

/// The variable that turns huge pages off (`off`, `0`, `no`, `never`).
pub const HUGE_PAGES_ENV: &str = "PROXYSTORE_HUGE_PAGES";

/// The bracketed choice of a THP control file: `"always [madvise] never"`
/// gives `"madvise"`.
fn selected(s: &str) -> Option<&str> {
    let a = s.find('[')?;
    let b = a + s[a..].find(']')?;
    Some(&s[a + 1..b])
}

/// Whether `MADV_HUGEPAGE` gets `backing` huge pages under the settings
/// `enabled` and `shmem_enabled` (the files' contents, if readable).
fn allows(backing: Backing, enabled: Option<&str>, shmem_enabled: Option<&str>) -> bool {
    match backing {
        Backing::Anonymous => matches!(enabled.and_then(selected), Some("always" | "madvise")),
        Backing::Shmem => matches!(
            shmem_enabled.and_then(selected),
            Some("always" | "within_size" | "advise" | "force")
        ),
    }
}

/// Whether `PROXYSTORE_HUGE_PAGES` (`off`, `0`, `no`, `never`) turns huge
/// pages off in this process (read once): the segments the server maps
/// itself then ask for neither the pool nor transparent huge pages. (UCX's
/// own System V segments follow UCX's setting, `UCX_SYSV_HUGETLB_MODE`:
/// `try` by default, `n` to leave the pool alone.)
pub fn turned_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| {
        std::env::var(HUGE_PAGES_ENV)
            .is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "no" | "never"))
    })
}

/// Whether this system gives `backing` transparent huge pages on request
/// (read once per process).
pub(crate) fn available(backing: Backing) -> bool {
    static SETTINGS: OnceLock<(Option<String>, Option<String>)> = OnceLock::new();
    let (enabled, shmem) = SETTINGS.get_or_init(|| {
        let read = |f: &str| {
            (!turned_off()).then(|| std::fs::read_to_string(format!("{SYS}/{f}")).ok())?
        };
        (read("enabled"), read("shmem_enabled"))
    });
    allows(backing, enabled.as_deref(), shmem.as_deref())
}

/// Whether a shared segment of `len` bytes can come from the huge-page
/// pool now: huge pages not turned off, `len` a whole number of the pool's
/// pages (the arena's segments are multiples of 2 MiB; a 256 MiB segment
/// does not take a 1 GiB page), and that many pages free.
pub(crate) fn pool_fits(len: usize) -> bool {
    if turned_off() || len == 0 {
        return false;
    }
    proxy_core::mem::huge_page_pool()
        .is_some_and(|(free, size)| size > 0 && len % size == 0 && free >= (len / size) as u64)
}

/// Ask for huge pages over the mapping `[ptr, ptr + len)` (page aligned)
/// where the system offers them for `backing`; whether it was asked and
/// accepted. Best effort: `false` leaves the mapping as it was.
pub(crate) fn advise(ptr: *mut u8, len: usize, backing: Backing) -> bool {
    if len == 0 || !available(backing) {
        return false;
    }
    // SAFETY: advice on a range of this process's own mapping (the caller's),
    // which changes no content and no access rights; failure is reported.
    unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_from_the_brackets() {
        let anon = |s| allows(Backing::Anonymous, Some(s), None);
        let shmem = |s| allows(Backing::Shmem, None, Some(s));
        assert!(anon("always [madvise] never"));
        assert!(anon("[always] madvise never"));
        assert!(!anon("always madvise [never]"));
        assert!(!anon("no brackets"));
        assert!(shmem("always within_size [advise] never deny force"));
        assert!(shmem("always [within_size] advise never deny force"));
        assert!(!shmem("always within_size advise [never] deny force"));
        assert!(!shmem("always within_size advise never [deny] force"));
        // Missing files (no THP in this kernel): nothing is asked.
        assert!(!allows(Backing::Anonymous, None, None));
        assert!(!allows(Backing::Shmem, None, None));
    }

    /// `THPeligible` of the mapping that starts at `ptr`, from
    /// `/proc/self/smaps`.
    fn thp_eligible(ptr: *mut u8) -> Option<bool> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let start = format!("{:x}-", ptr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines.next()?;
        let line = lines.find(|l| l.starts_with("THPeligible:"))?;
        Some(line.split_whitespace().nth(1)? == "1")
    }

    /// Segments take the pool (shared ones, when it has room) or the
    /// madvise path exactly where the system offers huge pages (the kernel
    /// then marks the mapping eligible), and fall back to plain pages
    /// elsewhere: either way they are usable memory.
    #[test]
    fn segments_ask_for_huge_pages_where_offered() {
        let len = 8 << 20;
        for backing in [Backing::Anonymous, Backing::Shmem] {
            // The pool is shared with every process: its room is read just
            // before the segment is made, as the segment reads it.
            let pooled = backing == Backing::Shmem && pool_fits(len);
            let mem = match backing {
                Backing::Anonymous => crate::Memory::anonymous(len, true).unwrap(),
                Backing::Shmem => {
                    crate::Memory::shared(len, true, "proxystore-hugepage-test").unwrap()
                }
            };
            if !pooled {
                assert_eq!(mem.huge_pages(), available(backing), "{backing:?}");
                if mem.huge_pages() {
                    assert_eq!(thp_eligible(mem.as_ptr()), Some(true), "{backing:?}");
                }
            }
            mem.write(len as u64 - 8, &[7; 8]);
            // SAFETY: the last 8 bytes of the mapping, just written.
            let tail = unsafe { std::slice::from_raw_parts(mem.as_ptr().add(len - 8), 8) };
            assert_eq!(tail, &[7; 8]);
        }
    }
}
