//! The huge-page pool raised for a test, and set back after.

const POOL: &str = "/proc/sys/vm/nr_hugepages";

/// The system's pool of huge pages (`vm.nr_hugepages`) raised by some
/// pages for a test, and set back to what it was on drop (also when the
/// test panics). Tests that raise it belong in a test binary of their own:
/// binaries run one after another, tests of one binary at once.
#[derive(Debug)]
pub struct HugePagePool {
    before: u64,
}

impl HugePagePool {
    /// Raise the pool by `pages` (needs root; `None` where it cannot be
    /// written, e.g. an unprivileged user or a container).
    pub fn raise(pages: u64) -> Option<HugePagePool> {
        let before: u64 = std::fs::read_to_string(POOL).ok()?.trim().parse().ok()?;
        std::fs::write(POOL, (before + pages).to_string()).ok()?;
        Some(HugePagePool { before })
    }
}

impl Drop for HugePagePool {
    fn drop(&mut self) {
        let _ = std::fs::write(POOL, self.before.to_string());
    }
}
