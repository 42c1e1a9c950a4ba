//! Objects past 2 GiB through DAOS (array layout): 2^31 - 1, 2^31 and
//! 2^32 + 7 bytes round-trip byte for byte, one at a time, each evicted
//! before the next. The data is a chunk of 1 MiB + 1 bytes repeated, so
//! bytes wrapped at 2^31 or 2^32 differ from the right ones (the Python
//! ProxyStore once truncated objects at 2.14 GB); every chunk of what comes
//! back is compared with it.
//!
//! Needs, besides a running DAOS (see `common`), room for about 9 GiB in
//! the test pool (punched objects are reclaimed in the background, so the
//! three objects may all hold space at once) and about 5 GiB of memory for
//! the largest get.

mod common;

use std::time::{Duration, Instant};

use daos_connector::DaosConnector;
use proxy_core::conformance::{assert_repeated, pattern, repeated};
use proxy_core::{Bytes, Connector};

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT) with about 9 GiB free"
)]
fn objects_past_2_gib() {
    let c = DaosConnector::new(common::options("large").timeout(Duration::from_secs(600))).unwrap();
    let chunk: Bytes = pattern((1 << 20) + 1, 29);
    for len in [(1u64 << 31) - 1, 1 << 31, (1 << 32) + 7] {
        let t = Instant::now();
        let key = c.put(repeated(&chunk, len)).unwrap_or_else(|e| {
            let hint = if e.to_string().contains("DER_NOSPACE") {
                " (the test pool needs about 9 GiB free: dmg pool create ... --size=10G)"
            } else {
                ""
            };
            panic!("put of a {len}-byte object: {e}{hint}")
        });
        let put = t.elapsed();
        let t = Instant::now();
        let got = c.get(&key).unwrap().expect("stored");
        let get = t.elapsed();
        assert_repeated(&got, &chunk, len, &format!("a {len}-byte object"));
        eprintln!("{len} B through DAOS: put {put:?}, get {get:?}");
        drop(got);
        c.evict(&key).unwrap();
        assert_eq!(c.get(&key).unwrap(), None);
        assert!(!c.exists(&key).unwrap());
    }
}
