//! Basic put/get/evict: round trips, missing and empty objects, large and huge
//! objects, many threads.

use std::time::Instant;

use bytes::Bytes;

use crate::conformance::Ctx;
use crate::conformance::data::{assert_repeated, pattern, repeated};
use crate::connector::Payload;
use crate::error::Error;

/// put → get returns the same bytes; a multi-part payload is stored as its
/// concatenation; exists is true.
pub fn put_get_roundtrip(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(10_000, 1);
    let k = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&data[..]));
    assert!(c.exists(&k).unwrap());
    let parts = Payload::new()
        .with(&b"BS\n"[..])
        .with(data.slice(..100))
        .with(data.slice(100..));
    let k2 = c.put(parts).unwrap();
    let got = c.get(&k2).unwrap().unwrap();
    assert_eq!(&got[..3], b"BS\n");
    assert_eq!(&got[3..], &data[..]);
    assert_ne!(k, k2, "every put mints a new key");
    c.evict(&k).unwrap();
    c.evict(&k2).unwrap();
}

/// A key whose object was never stored or was evicted gets `None`, exists is
/// false, and evicting it again is fine.
pub fn missing_key(ctx: &Ctx) {
    let c = &ctx.connector;
    let k = c.put(Payload::from(pattern(100, 2))).unwrap();
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    assert!(!c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get_batch(std::slice::from_ref(&k)).unwrap(), vec![None]);
    if let Some(d) = c.as_deferrable() {
        let fresh = d.new_key().unwrap();
        assert_eq!(c.get(&fresh).unwrap(), None);
        assert!(!c.exists(&fresh).unwrap());
        d.set(&fresh, Payload::from(pattern(10, 3))).unwrap();
        assert_eq!(c.get(&fresh).unwrap(), Some(pattern(10, 3)));
        c.evict(&fresh).unwrap();
    }
}

/// The empty object round-trips (and is not confused with a missing one).
pub fn empty_object(ctx: &Ctx) {
    let c = &ctx.connector;
    if !ctx.caps.empty_objects {
        // Declared: refused whole, with a permanent error, nothing written.
        for e in [
            c.put(Payload::new()).map(|_| ()).unwrap_err(),
            c.put_batch(vec![Payload::from(vec![1u8; 3]), Payload::new()])
                .map(|_| ())
                .unwrap_err(),
        ] {
            assert!(!e.is_temporary(), "a refused empty object: {e}");
            assert!(e.to_string().contains("empty"), "{e}");
        }
        if let Some(d) = c.as_deferrable() {
            let k = d.new_key().unwrap();
            let e = d.set(&k, Payload::new()).unwrap_err();
            assert!(!e.is_temporary(), "a refused empty set: {e}");
            assert!(!c.exists(&k).unwrap(), "an empty set wrote something");
        }
        return;
    }
    let k = c.put(Payload::new()).unwrap();
    assert_eq!(c.get(&k).unwrap(), Some(Bytes::new()));
    assert!(c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
}

/// A 256 MiB object round-trips intact (or, if the connector declares a
/// smaller `max_object_size`, is refused with `TooLarge` and nothing is stored).
pub fn large_object(ctx: &Ctx) {
    const SIZE: usize = 256 << 20;
    let c = &ctx.connector;
    let data = pattern(SIZE, 9);
    match ctx.caps.max_object_size {
        Some(limit) if (SIZE as u64) > limit => {
            let err = c.put(Payload::from(data)).unwrap_err();
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        }
        _ => {
            let k = c.put(Payload::from(data.clone())).unwrap();
            let got = c.get(&k).unwrap().expect("large object stored");
            assert_eq!(got.len(), SIZE);
            assert!(got == data, "large object read back with other bytes");
            drop(got);
            c.evict(&k).unwrap();
        }
    }
}

/// Many threads put, get, check and evict at once; nothing is lost or mixed up.
pub fn concurrent_threads(ctx: &Ctx) {
    let threads = 8;
    let per = 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = &ctx.connector;
            s.spawn(move || {
                let mut kept = Vec::new();
                for i in 0..per {
                    let data = pattern(64 + (i * 13 + t * 7) % 5000, (t * per + i) as u8);
                    let k = c.put(Payload::from(data.clone())).unwrap();
                    assert_eq!(c.get(&k).unwrap().as_ref(), Some(&data));
                    if i % 2 == 0 {
                        c.evict(&k).unwrap();
                        assert_eq!(c.get(&k).unwrap(), None);
                    } else {
                        kept.push((k, data));
                    }
                }
                for (k, data) in &kept {
                    assert_eq!(c.get(k).unwrap().as_ref(), Some(data), "object lost");
                    c.evict(k).unwrap();
                }
            });
        }
    });
}

/// Opt-in (an ignored test: `cargo test huge_object -- --ignored`): one object
/// of 4 GiB + 4099 bytes, for 32-bit length framing. Read back with the same
/// length and checksum, or refused with `TooLarge` (required when it is over
/// the declared `max_object_size`; allowed otherwise, for a server's memory
/// limit).
pub fn huge_object(ctx: &Ctx) {
    const SIZE: u64 = (4 << 30) + 4099;
    let c = &ctx.connector;
    // A chunk length that does not divide 4 GiB: data wrapped at 2^32 differs.
    let chunk = pattern((1 << 20) + 1, 17);
    let payload = repeated(&chunk, SIZE);
    let t0 = Instant::now();
    match c.put(payload) {
        Err(Error::TooLarge { size, limit, .. }) => {
            assert!(size >= SIZE, "TooLarge names {size} bytes for {SIZE}");
            eprintln!("refused: {SIZE} bytes ({size} with framing) over a limit of {limit}");
        }
        Err(e) => panic!("put of {SIZE} bytes: {e}"),
        Ok(k) => {
            assert!(
                ctx.caps.max_object_size.is_none_or(|l| l >= SIZE),
                "accepted over the declared max_object_size"
            );
            eprintln!("put {SIZE} bytes in {:?}", t0.elapsed());
            let got = c.get(&k).unwrap().expect("huge object stored");
            assert_repeated(&got, &chunk, SIZE, "a > 4 GiB object");
            drop(got);
            c.evict(&k).unwrap();
        }
    }
}
