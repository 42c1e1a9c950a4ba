//! Objects past 2 GiB through the file connector (on `/dev/shm` where it
//! exists): 2^31 - 1, 2^31 and 2^32 + 7 bytes round-trip byte for byte, one
//! at a time, each evicted before the next. The data is a chunk of 1 MiB + 1
//! bytes repeated, so bytes wrapped at 2^31 or 2^32 differ from the right
//! ones (the Python ProxyStore once truncated objects at 2.14 GB).

use proxy_core::conformance::{assert_repeated, repeated};
use proxy_core::{Bytes, Connector, FileConnector};

#[test]
fn objects_past_2_gib() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("ps-large-file-{}", std::process::id()));
    let c = FileConnector::new(&dir).unwrap();
    let chunk = Bytes::from(
        (0..(1usize << 20) + 1)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
            .collect::<Vec<u8>>(),
    );
    for len in [(1u64 << 31) - 1, 1 << 31, (1 << 32) + 7] {
        let key = c.put(repeated(&chunk, len)).unwrap();
        let got = c.get(&key).unwrap().expect("stored");
        assert_repeated(&got, &chunk, len, &format!("a {len}-byte object"));
        drop(got);
        c.evict(&key).unwrap();
        assert!(!c.exists(&key).unwrap());
    }
    c.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
