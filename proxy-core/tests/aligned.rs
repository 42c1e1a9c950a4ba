//! Decoded byte strings and arrays (`Bytes`, `NdArray` data: views of the
//! connector's buffer) start on a 64-byte boundary, with the local and file
//! connectors, for small (heap) and large (mapped) objects alike.

use bytes::Bytes;
use proxy_core::codec::PAYLOAD_ALIGN;
use proxy_core::{FileConnector, LocalConnector, NdArray, Store};

const SIZES: [usize; 9] = [1, 3, 63, 64, 65, 4096, 100_003, 256 << 10, (1 << 20) + 5];

fn check(store: &Store) {
    for n in SIZES {
        let data = Bytes::from((0..n).map(|i| (i * 7) as u8).collect::<Vec<_>>());
        let key = store.put(&data).unwrap();
        let got: Bytes = store.get(&key).unwrap().unwrap();
        assert_eq!(got, data);
        assert_eq!(got.as_ptr() as usize % PAYLOAD_ALIGN, 0, "{n} bytes");
        let arr = NdArray::from_slice(&vec![1.5f64; n]);
        let key = store.put(&arr).unwrap();
        let got: NdArray = store.get(&key).unwrap().unwrap();
        assert_eq!(got, arr);
        assert_eq!(
            got.data.as_ptr() as usize % PAYLOAD_ALIGN,
            0,
            "array of {n}"
        );
    }
}

#[test]
fn local_connector_payloads_are_aligned() {
    let s = Store::builder("aligned-local", LocalConnector::new())
        .cache_bytes(0)
        .build()
        .unwrap();
    check(&s);
}

#[test]
fn file_connector_payloads_are_aligned() {
    let dir = std::env::temp_dir().join(format!("ps-aligned-{}", std::process::id()));
    let s = Store::builder("aligned-file", FileConnector::new(&dir).unwrap())
        .cache_bytes(0)
        .build()
        .unwrap();
    check(&s);
    let _ = std::fs::remove_dir_all(&dir);
}
