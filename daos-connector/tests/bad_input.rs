//! Bad input against a real DAOS: unknown pool and container labels, forged
//! and random keys, punched objects. Each gives a clear error or `None`,
//! never a panic, a hang or other bytes.

mod common;

use daos_connector::{DaosConnector, DaosKey, DaosOptions};
use proxy_core::{Connector, Error, Key, Payload};

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT)"
)]
fn unknown_pool_and_container_labels_are_clear_config_errors() {
    let (pool, cont) = common::target();
    let e = DaosConnector::new(DaosOptions::new("no-such-pool-psrs", cont.clone())).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{m}");
    assert!(
        m.contains("no-such-pool-psrs") && m.contains("does not exist"),
        "{m}"
    );
    assert!(!e.is_temporary());

    let e = DaosConnector::new(DaosOptions::new(pool.clone(), "no-such-cont-psrs")).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{m}");
    assert!(m.contains("no-such-cont-psrs") && m.contains(&pool), "{m}");

    let e = DaosConnector::new(DaosOptions::new(pool, cont).oclass("NOPE_9")).unwrap_err();
    assert!(e.to_string().contains("unknown DAOS object class"), "{e}");
}

fn key_like(c: &DaosConnector, real: &DaosKey, f: impl FnOnce(&mut DaosKey)) -> Key {
    let _ = c;
    let mut k = real.clone();
    f(&mut k);
    Key::encode(&k)
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT)"
)]
fn forged_random_and_punched_keys() {
    let c = common::connector("bad");
    let data = proxy_core::conformance::pattern(100_000, 7);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let real: DaosKey = key.decode("daos").unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));

    // Forged: an id never written, a wrong length, an id of another type,
    // another namespace's key, a huge length.
    let never = key_like(&c, &real, |k| k.oid_lo += 1 << 40);
    assert_eq!(c.get(&never).unwrap(), None);
    assert!(!c.exists(&never).unwrap());
    let wrong_len = key_like(&c, &real, |k| k.len -= 1);
    assert_eq!(c.get(&wrong_len).unwrap(), None);
    c.evict(&wrong_len).unwrap();
    assert_eq!(
        c.get(&key).unwrap().as_deref(),
        Some(&data[..]),
        "evicting a forged key (same object id, other length) punched the object"
    );
    let huge = key_like(&c, &real, |k| k.len = 1 << 40);
    assert_eq!(
        c.get(&huge).unwrap(),
        None,
        "a forged 1 TiB length allocates nothing"
    );
    let kv_type = key_like(&c, &real, |k| k.oid_hi &= !(0xffu64 << 56));
    let e = c.get(&kv_type).unwrap_err();
    assert!(matches!(e, Error::InvalidKey { .. }), "{e}");
    let other_ns = key_like(&c, &real, |k| k.namespace.push('x'));
    let e = c.get(&other_ns).unwrap_err();
    assert!(e.to_string().contains("namespace"), "{e}");

    // Another namespace in the same container cannot read it, even with
    // the key rewritten to its own namespace (the header carries a hash of it).
    let other = common::connector("bad-other");
    let rewritten = key_like(&other, &real, |k| {
        k.namespace = other.options().namespace.clone()
    });
    assert_eq!(other.get(&rewritten).unwrap(), None);

    // Random bytes and truncated keys.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..200 {
        let mut b = Vec::new();
        for _ in 0..(n % 60) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(x as u8);
        }
        let k = Key::from_bytes(b);
        match c.get(&k) {
            Ok(None) => {}
            Err(Error::InvalidKey { .. }) => {}
            other => panic!("random key {k}: {other:?}"),
        }
    }
    let bytes = key.as_bytes();
    let e = c
        .get(&Key::from_bytes(bytes[..bytes.len() - 1].to_vec()))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidKey { .. }), "{e}");

    // Text keys round trip and reject garbage.
    let s = c.key_to_string(&key).unwrap();
    assert!(s.starts_with("daos:"), "{s}");
    assert_eq!(c.parse_key(&s).unwrap(), key);
    assert!(c.parse_key("daos:p/c/n/zz.1/3").is_err());

    // Punched: gone, for this and a fresh instance; evicting again is fine.
    c.evict(&key).unwrap();
    assert_eq!(c.get(&key).unwrap(), None);
    assert!(!c.exists(&key).unwrap());
    let fresh = DaosConnector::new(c.options().clone()).unwrap();
    assert_eq!(fresh.get(&key).unwrap(), None);
    c.evict(&key).unwrap();
    let batch = c.get_batch(&[key.clone(), never.clone(), key]).unwrap();
    assert_eq!(batch, vec![None, None, None]);
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + PYTHON container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_PY_CONT)"
)]
fn pydaos_layout_forged_keys_and_bad_options() {
    use daos_connector::{DaosLayout, UNKNOWN_LEN};

    // No namespace: no dictionary to name.
    let mut o = common::pydaos_options("bad-py");
    o.namespace.clear();
    let e = DaosConnector::new(o).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
    assert!(e.to_string().contains("namespace"), "{e}");

    let c = DaosConnector::new(common::pydaos_options("bad-py")).unwrap();
    let other = DaosConnector::new(common::pydaos_options("bad-py-other")).unwrap();
    let data = proxy_core::conformance::pattern(70_000, 3);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let real: DaosKey = key.decode("daos").unwrap();
    assert_eq!(real.len, 70_000);
    assert!(real.entry.is_some());

    // Another dictionary's store refuses the key (its namespace, then its
    // dictionary object); an array-layout key is refused by layout.
    let e = other.get(&key).unwrap_err();
    assert!(matches!(e, Error::InvalidKey { .. }), "{e}");
    let mut moved = real.clone();
    moved.namespace = other.options().namespace.clone();
    let e = other.get(&Key::encode(&moved)).unwrap_err();
    assert!(e.to_string().contains("dictionary"), "{e}");
    let array_key = key_like(&c, &real, |k| k.entry = None);
    let e = c.get(&array_key).unwrap_err();
    assert!(e.to_string().contains("array layout"), "{e}");
    let co = c.options();
    let array_store = DaosConnector::new(
        DaosOptions::new(co.pool.clone(), co.container.clone()).namespace(co.namespace.clone()),
    )
    .unwrap();
    let e = array_store.get(&key).unwrap_err();
    assert!(e.to_string().contains("pydaos layout"), "{e}");
    assert_eq!(array_store.options().layout, DaosLayout::Array);

    // Wrong lengths read as missing and evict nothing; a huge one
    // allocates nothing; an unknown length reads the value.
    for len in [69_999, 70_001, 1 << 40] {
        let forged = key_like(&c, &real, |k| k.len = len);
        assert_eq!(c.get(&forged).unwrap(), None, "length {len}");
        assert!(!c.exists(&forged).unwrap());
        c.evict(&forged).unwrap();
    }
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    let unknown = key_like(&c, &real, |k| k.len = UNKNOWN_LEN);
    assert_eq!(c.get(&unknown).unwrap().as_deref(), Some(&data[..]));

    // Never-written and odd entry names.
    let never = key_like(&c, &real, |k| k.entry = Some("no-such-entry".into()));
    assert_eq!(c.get(&never).unwrap(), None);
    for bad in ["", "a\0b"] {
        let k = key_like(&c, &real, |k| k.entry = Some(bad.into()));
        let e = c.get(&k).unwrap_err();
        assert!(matches!(e, Error::InvalidKey { .. }), "{bad:?}: {e}");
    }
    // Text forms: ours round-trips; ProxyStore's four fields parse.
    let text = c.key_to_string(&key).unwrap();
    assert!(text.ends_with(":70000"), "{text}");
    assert_eq!(c.parse_key(&text).unwrap(), key);
    let (no_len, _) = text.rsplit_once(':').unwrap();
    let k = c.parse_key(no_len).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&data[..]));

    // Random bytes as a key: an error, not a panic.
    let e = c.get(&Key::from_bytes(vec![0xA5u8; 40])).unwrap_err();
    assert!(matches!(e, Error::InvalidKey { .. }), "{e}");

    c.evict(&key).unwrap();
    assert_eq!(c.get(&key).unwrap(), None);
}
