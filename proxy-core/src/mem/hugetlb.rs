//! The system's pool of huge pages (`vm.nr_hugepages`), as `/proc/meminfo`
//! reports it.

/// The default huge-page pool now: free pages and the page size in bytes
/// (`None` where `/proc/meminfo` cannot be read). Read at each call: the
/// pool is shared with every process.
pub fn huge_page_pool() -> Option<(u64, usize)> {
    pool_in(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `(free pages, page size in bytes)` from the text of `/proc/meminfo`.
fn pool_in(meminfo: &str) -> Option<(u64, usize)> {
    let field = |name: &str| {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    let size = usize::try_from(field("Hugepagesize:")? * 1024).ok()?;
    Some((field("HugePages_Free:")?, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_read_from_meminfo() {
        let m = "MemTotal: 1 kB\nHugePages_Total:    3072\nHugePages_Free:     2428\nHugepagesize:       2048 kB\n";
        assert_eq!(pool_in(m), Some((2428, 2 << 20)));
        assert_eq!(pool_in("MemTotal: 1 kB\n"), None);
        assert_eq!(pool_in("HugePages_Free: x\nHugepagesize: 2048 kB\n"), None);
    }
}
