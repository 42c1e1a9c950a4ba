//! Through a [`Store`](crate::Store): bad objects, proxies, evict-on-resolve.

use bytes::Bytes;

use crate::conformance::Ctx;
use crate::connector::Payload;
use crate::error::Error;
use crate::key::Key;
use crate::proxy::Proxy;

/// Through a [`Store`](crate::Store): a value that is not a valid encoded object is an error
/// naming the key; a key for a deleted object is `MissingKey` when proxied.
pub fn store_bad_objects(ctx: &Ctx) {
    let store = ctx.store("bad-objects");
    let junk = store
        .put_encoded(Payload::from(Bytes::from_static(b"\x00\x01garbage")))
        .unwrap();
    let err = store.get::<Bytes>(&junk).unwrap_err();
    assert!(matches!(err, Error::Decode { key: Some(_), .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&store.connector().key_to_string(&junk).unwrap()),
        "{err}"
    );
    let good = store.put(&"kept".to_string()).unwrap();
    assert!(
        store.get::<Vec<f64>>(&good).is_err(),
        "wrong type is an error"
    );
    let p: Proxy<String> = store.proxy_from_key(junk.clone(), false);
    assert!(p.resolve().is_err());
    store.evict(&junk).unwrap();
    let gone: Proxy<String> = store.proxy_from_key(junk, false);
    assert!(matches!(gone.resolve(), Err(Error::MissingKey { .. })));
    assert_eq!(store.get::<String>(&good).unwrap().as_deref(), Some("kept"));
    store.evict(&good).unwrap();
}

/// A store over the connector: typed put/get, proxies that resolve from a
/// deserialized copy in this process, batch proxies, evict-on-resolve.
pub fn store_and_proxy(ctx: &Ctx) {
    let store = ctx.store("proxy");
    let v: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
    let p = store.proxy(v.clone()).unwrap();
    assert!(p.is_resolved());
    let q: Proxy<Vec<f64>> = Proxy::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert!(!q.is_resolved());
    assert_eq!(*q, v);
    let ps = store
        .proxy_batch(
            vec!["a".to_string(), "b".to_string()],
            crate::ProxyOptions::default()
                .evict(true)
                .populate_target(false),
        )
        .unwrap();
    assert_eq!(ps[1].resolve().unwrap(), "b");
    assert!(!store.exists(ps[1].key()).unwrap(), "evicted on resolve");
    assert_eq!(ps[0].resolve().unwrap(), "a");
    let keys: Vec<Key> = ps.iter().map(|p| p.key().clone()).collect();
    assert_eq!(store.get_batch::<String>(&keys).unwrap(), vec![None, None]);
    store.evict(p.key()).unwrap();
    assert!(matches!(
        store
            .proxy_from_key::<Vec<f64>>(p.key().clone(), false)
            .resolve(),
        Err(Error::MissingKey { .. })
    ));
}
