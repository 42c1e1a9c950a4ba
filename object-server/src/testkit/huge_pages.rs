//! Segments from the system's huge-page pool, read in place on this node.

use proxy_core::conformance::HugePagePool;
use proxy_core::{Connector, Payload};

use super::{Fabric, Mode, ServerProcess, connector, pattern};
use crate::DataPath;

const HUGE: usize = 2 << 20;

/// Free pages of the pool now.
fn free_huge_pages() -> u64 {
    proxy_core::mem::huge_page_pool().map_or(0, |(free, _)| free)
}

/// The page size (`KernelPageSize`) of this process's mapping that holds
/// address `addr`, from `/proc/self/smaps` (`None`: nothing mapped there).
fn page_size_at(addr: usize) -> Option<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for l in smaps.lines() {
        if let Some((range, _)) = l.split_once(' ')
            && let Some((a, b)) = range.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            inside = (a..b).contains(&addr);
            continue;
        }
        if inside && let Some(v) = l.strip_prefix("KernelPageSize:") {
            return v
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
                .map(|k| k * 1024);
        }
    }
    None
}

/// Same-node reads in place from a server whose segments (8 MiB) come
/// from the huge-page pool when it has room: the pool is raised by 16 pages
/// for the test where this process may (root), and the server started
/// after. The bytes a reader gets lie in 2 MiB pages exactly when the pool
/// had room for the server's first segment (else in 4 KiB pages: the
/// silent fallback), are right, and once the reader lets go of them and its
/// connector, the mapping is gone from this process. Then the same with the
/// server told to leave the pool alone (`PROXYSTORE_HUGE_PAGES=off`, and
/// `UCX_SYSV_HUGETLB_MODE=n` for UCX's own segments): 4 KiB pages, and
/// no page of the pool taken.
///
/// `server_maps`: the server maps its segments itself (`memfd`), so the
/// pool must be taken when it has room. Otherwise the fabric allocates them
/// and may not take the pool (the `libucx` wheel's UCX 1.22 is built
/// without `SHM_HUGETLB`, its debug log says so; Debian's UCX 1.13 takes
/// it): then the page size the reader sees must match what the server took.
pub fn huge_page_segments<F: Fabric>(fabric: &str, server_maps: bool) {
    let pool = HugePagePool::raise(16);
    let room = free_huge_pages() >= 4;
    for (value, ucx, pooled) in [("on", "try", room), ("off", "n", false)] {
        let free_before = free_huge_pages();
        let server = ServerProcess::<F>::start_with_env(
            fabric,
            &["--segment-size", "8M", "--memory-limit", "16M"],
            &[
                (crate::HUGE_PAGES_ENV, value),
                ("UCX_SYSV_HUGETLB_MODE", ucx),
            ],
        );
        let c = connector(
            &server,
            Mode {
                path: DataPath::Auto,
                zero_copy: Some(true),
            },
        );
        let data = pattern((3 << 20) + 5, 11);
        let key = c.put(Payload::from(data.clone())).unwrap();
        let b = c.get(&key).unwrap().unwrap();
        assert_eq!(&b[..], &data[..]);
        let addr = b.as_ptr() as usize;
        let taken = free_before.saturating_sub(free_huge_pages()) >= 4;
        if server_maps || !pooled {
            assert_eq!(
                taken,
                pooled,
                "{}={value}: pool pages taken",
                crate::HUGE_PAGES_ENV
            );
        }
        let want = if taken { HUGE } else { 4096 };
        assert_eq!(
            page_size_at(addr),
            Some(want),
            "{}={value}: the pool had room: {room} (raised here: {})",
            crate::HUGE_PAGES_ENV,
            pool.is_some()
        );
        drop(b);
        c.evict(&key).unwrap();
        drop(c);
        if want == HUGE {
            assert_ne!(
                page_size_at(addr),
                Some(HUGE),
                "the segment's huge-page mapping outlived its reader"
            );
        }
    }
    drop(pool);
}
