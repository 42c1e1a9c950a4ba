//! Serialized proxies: what a consumer receives from another process.
//! Decoding never resolves (resolving would build the store named inside).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_core::{LockedProxy, Proxy};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Proxy::<Vec<u8>>::from_bytes(data) {
        assert!(!p.is_resolved());
        let wire = p.to_bytes().expect("a decoded proxy serializes");
        let q = Proxy::<Vec<u8>>::from_bytes(&wire).expect("a serialized proxy decodes");
        assert_eq!(q.to_bytes().expect("serializes"), wire);
        assert_eq!(q.key(), p.key());
        let _ = format!("{p:?} {:?}", p.factory());
    }
    if let Ok(l) = postcard::from_bytes::<LockedProxy<String>>(data) {
        assert!(l.resolve().is_err());
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = serde_json::from_str::<Proxy<String>>(text)
    {
        let json = serde_json::to_string(&p).expect("a decoded proxy serializes");
        let q: Proxy<String> = serde_json::from_str(&json).expect("a serialized proxy decodes");
        assert_eq!(q.key(), p.key());
        assert_eq!(q.factory().store_config(), p.factory().store_config());
    }
});
