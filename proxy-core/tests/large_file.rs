//! Objects past 2 GiB through the file connector (on `/dev/shm` where it
//! exists): 2^31 - 1, 2^31 and 2^32 + 7 bytes round-trip byte for byte, one
//! at a time, each evicted before the next. The data is a chunk of 1 MiB + 1
//! bytes repeated, so bytes wrapped at 2^31 or 2^32 differ from the right
//! ones (the Python ProxyStore once truncated objects at 2.14 GB).

use proxy_core::{Bytes, Connector, FileConnector, Payload};

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
        let mut payload = Payload::new();
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            payload = payload.with(chunk.slice(..n));
            left -= n as u64;
        }
        let key = c.put(payload).unwrap();
        let got = c.get(&key).unwrap().expect("stored");
        assert_eq!(got.len() as u64, len, "length of a {len}-byte object");
        for (i, part) in got.chunks(chunk.len()).enumerate() {
            assert!(
                part == &chunk[..part.len()],
                "{len}-byte object: bytes differ in chunk {i}"
            );
        }
        drop(got);
        c.evict(&key).unwrap();
        assert!(!c.exists(&key).unwrap());
    }
    c.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
