//! Encoded objects (`BS`/`US`/`NP`/`RP` + payload), as read from any store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_core::codec::{decode, encode};
use proxy_core::{Bytes, NdArray};
use serde::{Deserialize, Serialize};

/// A user type with arrays inside (decoded through postcard, not `.npy`).
#[derive(Debug, Serialize, Deserialize)]
struct Mixed {
    name: String,
    arrays: Vec<NdArray>,
    blob: Bytes,
    n: Option<u64>,
}

fn check_array(a: &NdArray) {
    let _ = (a.len(), a.is_empty(), format!("{a:?}"));
    let _ = a.to_vec::<f64>();
    let _ = a.to_vec::<i8>();
    let _ = a.to_vec::<u16>();
    // What encodes decodes back to the same array.
    if let Ok(e) = encode(a) {
        assert_eq!(decode::<NdArray>(e.to_bytes()).ok().as_ref(), Some(a));
    }
}

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let _ = decode::<Bytes>(buf.clone());
    let _ = decode::<Vec<u8>>(buf.clone());
    let _ = decode::<String>(buf.clone());
    let _ = decode::<Vec<f64>>(buf.clone());
    let _ = decode::<Vec<i8>>(buf.clone());
    let _ = decode::<Vec<u16>>(buf.clone());
    if let Ok(a) = decode::<NdArray>(buf.clone()) {
        check_array(&a);
    }
    if let Ok(m) = decode::<Mixed>(buf) {
        m.arrays.iter().for_each(check_array);
    }
});
