//! Keys: the binary form a connector decodes (it arrives inside proxies and
//! messages) and the hex text form people pass on the command line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_core::{FileKey, Key};
use serde::{Deserialize, Serialize};

/// A key of the shape transport connectors use (address bytes, offsets, ids).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Located {
    addr: Vec<u8>,
    seg: u32,
    offset: u64,
    len: u64,
    id: u64,
    instance: u64,
}

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(data.to_vec());
    // A fixed-size key decodes only from exactly its own encoding.
    if let Ok(k) = key.decode::<FileKey>("file") {
        assert_eq!(Key::encode(&k), key);
    }
    if let Ok(k) = key.decode::<Located>("located") {
        let again = Key::encode(&k).decode::<Located>("located");
        assert_eq!(again.as_ref().ok(), Some(&k));
    }
    // Inside a postcard message (as in a serialized proxy).
    if let Ok(k) = postcard::from_bytes::<Key>(data) {
        let wire = postcard::to_allocvec(&k).expect("a key serializes");
        assert_eq!(postcard::from_bytes::<Key>(&wire).ok(), Some(k));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // The hex form accepts exactly lower/upper-case hex digit pairs.
        if let Ok(k) = Key::from_hex(text) {
            assert_eq!(k.to_string(), text.trim().to_ascii_lowercase());
        }
        if let Ok(k) = FileKey::from_filename(text) {
            assert_eq!(FileKey::from_filename(&k.filename()).ok(), Some(k));
        }
        if let Ok(k) = serde_json::from_str::<Key>(text) {
            let json = serde_json::to_string(&k).expect("a key serializes");
            assert_eq!(serde_json::from_str::<Key>(&json).ok(), Some(k));
        }
    }
});
