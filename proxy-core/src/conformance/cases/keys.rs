//! Keys and configurations: serde round trips, kind, malformed, never-stored
//! and foreign keys.

use crate::conformance::Ctx;
use crate::conformance::data::pattern;
use crate::connector::{Connector, ConnectorConfig, Deferrable, DynConnector, Payload};
use crate::connectors::file::FileKey;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::registry;

/// `Ok(v)` or `InvalidKey` (`None`); any other error fails the case.
fn ok_or_invalid<T>(r: Result<T>, what: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::InvalidKey { .. }) => None,
        Err(e) => panic!("{what}: {e} (expected InvalidKey or nothing found)"),
    }
}

/// A key this namespace holds no object for: every operation finds nothing or
/// says `InvalidKey`, never returns bytes, and disturbs nothing.
fn check_unknown_key(c: &DynConnector, key: &Key, what: &str) {
    if let Some(got) = ok_or_invalid(c.get(key), &format!("get of {what}")) {
        assert!(
            got.is_none(),
            "get of {what} {key:?} returned {} bytes of some object",
            got.map_or(0, |b| b.len())
        );
    }
    if let Some(e) = ok_or_invalid(c.exists(key), &format!("exists of {what}")) {
        assert!(!e, "exists of {what} {key:?} is true");
    }
    ok_or_invalid(c.evict(key), &format!("evict of {what}"));
    if let Some(got) = ok_or_invalid(
        c.get_batch(&[key.clone(), key.clone()]),
        &format!("get_batch of {what}"),
    ) {
        assert_eq!(got, vec![None, None], "get_batch of {what} {key:?}");
    }
}

/// Keys survive serde (postcard and JSON); the configuration round-trips
/// (JSON, TOML, postcard) and rebuilds a connector that reads the same objects
/// (where the connector is reachable from a rebuilt instance at all).
pub fn key_and_config_serde(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(777, 4);
    let k = c.put(Payload::from(data.clone())).unwrap();
    let k_pc: Key = postcard::from_bytes(&postcard::to_allocvec(&k).unwrap()).unwrap();
    let k_js: Key = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
    assert_eq!(k_pc, k);
    assert_eq!(k_js, k);
    let text = c.key_to_string(&k).unwrap();
    assert_eq!(
        c.parse_key(&text).unwrap(),
        k,
        "text form {text:?} round-trips"
    );
    assert!(c.parse_key("not a key at all").is_err());
    assert_eq!(c.get(&k_pc).unwrap(), Some(data.clone()));

    let cfg = c.config();
    let via_json: ConnectorConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    let via_pc: ConnectorConfig =
        postcard::from_bytes(&postcard::to_allocvec(&cfg).unwrap()).unwrap();
    assert_eq!(via_json, cfg);
    assert_eq!(via_pc, cfg);
    let store_cfg = crate::StoreConfig::new("conformance-toml", cfg.clone());
    let toml = store_cfg.to_toml_string().unwrap();
    assert_eq!(
        crate::StoreConfig::from_toml_str(&toml).unwrap(),
        store_cfg,
        "TOML:\n{toml}"
    );

    let rebuilt = registry::connector_from_config(&cfg)
        .expect("connector rebuilds from its config in this process");
    assert_eq!(rebuilt.kind(), c.kind());
    assert_eq!(rebuilt.config(), cfg, "config of the rebuilt connector");
    assert_eq!(rebuilt.get(&k).unwrap(), Some(data));
    c.evict(&k).unwrap();
}

/// `kind() == config().kind ==` the kind registered for it, also for an
/// instance rebuilt from the configuration.
pub fn kind_and_config(ctx: &Ctx) {
    let c = &ctx.connector;
    let kind = c.kind();
    assert_eq!(
        c.config().kind,
        kind,
        "kind() differs from the kind in config()"
    );
    assert!(
        registry::registered_kinds().contains(&kind),
        "kind() is {kind:?}, which no registered connector type has (registered: {:?})",
        registry::registered_kinds()
    );
    let rebuilt = ctx.rebuild();
    assert_eq!(rebuilt.kind(), kind, "kind() of the rebuilt connector");
    assert_eq!(
        rebuilt.config().kind,
        kind,
        "config().kind of the rebuilt connector"
    );
    assert_eq!(
        rebuilt.as_deferrable().is_some(),
        c.as_deferrable().is_some(),
        "a rebuilt connector is deferrable exactly when the original is"
    );
}

/// Malformed keys are clear errors on every operation (never a panic), and
/// nothing else in the store is disturbed.
pub fn bad_keys(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(1000, 5);
    let good = c.put(Payload::from(data.clone())).unwrap();
    let bad = [
        Key::from_bytes(Vec::new()),
        Key::from_bytes(vec![0xff; 3]),
        Key::from_bytes(vec![0x42; 300]),
    ];
    for k in &bad {
        assert!(
            matches!(c.get(k), Err(Error::InvalidKey { .. })),
            "get {k:?}"
        );
        assert!(
            matches!(c.exists(k), Err(Error::InvalidKey { .. })),
            "exists {k:?}"
        );
        assert!(
            matches!(c.evict(k), Err(Error::InvalidKey { .. })),
            "evict {k:?}"
        );
        assert!(
            c.get_batch(&[good.clone(), k.clone()]).is_err(),
            "get_batch {k:?}"
        );
    }
    assert_eq!(
        c.get(&good).unwrap(),
        Some(data),
        "a bad key disturbed another object"
    );
    c.evict(&good).unwrap();
}

/// A well-formed key that was never stored (a stored key with its last byte
/// changed; a fresh deferrable key): `None` or `InvalidKey`, never bytes, and
/// nothing else disturbed.
pub fn never_stored_key(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(2000, 21);
    let k = c.put(Payload::from(data.clone())).unwrap();
    for flip in [0x01u8, 0x80] {
        let mut b = k.as_bytes().to_vec();
        if let Some(last) = b.last_mut() {
            *last ^= flip;
        }
        check_unknown_key(c, &Key::from_bytes(b), "a never-stored key");
    }
    if let Some(d) = c.as_deferrable() {
        let fresh = d.new_key().unwrap();
        check_unknown_key(c, &fresh, "a fresh deferrable key");
        assert_eq!(
            c.get_batch(&[fresh.clone(), k.clone()]).unwrap(),
            vec![None, Some(data.clone())]
        );
    }
    assert_eq!(
        c.get(&k).unwrap(),
        Some(data),
        "the stored object is intact"
    );
    c.evict(&k).unwrap();
}

/// Keys of other connectors (the 16-byte UUID keys of local, file and Redis,
/// one with an object behind it in a live local connector; a multi connector's
/// key; keys of unknown formats): `InvalidKey` or `None`, never bytes, and
/// nothing else disturbed.
pub fn foreign_keys(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(3000, 51);
    let own = c.put(Payload::from(data.clone())).unwrap();
    let uuid_key = Key::from_bytes(vec![0x5a; 16]);
    let elsewhere = crate::LocalConnector::new();
    elsewhere
        .set(&uuid_key, Payload::from(pattern(3000, 52)))
        .unwrap();
    let foreign = [
        ("a local connector's key", uuid_key.clone()),
        (
            "a file connector's key",
            Key::from(FileKey { id: [0xa5; 16] }),
        ),
        (
            "a multi connector's key",
            Key::encode(&("small".to_string(), uuid_key.clone())),
        ),
        (
            "a key of an unknown connector",
            Key::encode(&("s3", "bucket/object-7".to_string(), 42u64, 7u32)),
        ),
        ("a counter key", Key::encode(&7u64)),
    ];
    for (what, k) in &foreign {
        check_unknown_key(c, k, what);
    }
    assert_eq!(
        elsewhere.get(&uuid_key).unwrap(),
        Some(pattern(3000, 52)),
        "the other connector's object"
    );
    assert_eq!(c.get(&own).unwrap(), Some(data), "the own object is intact");
    c.evict(&own).unwrap();
}
