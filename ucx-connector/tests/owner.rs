//! In-process owner mode (`UcxConnector::owner`): this process serves its own
//! objects from its own registered arena.

use std::time::Duration;
use ucx_connector::TransportConfig;

use object_server::testkit::pattern;
use proxy_core::{Connector, Error, FromConfig, Payload};
use ucx_connector::{DataPath, UcxConfig, UcxConnector, UcxKey, UcxOwnerConfig};

fn owner(tls: &str, limit: u64) -> UcxConnector {
    UcxConnector::owner(UcxOwnerConfig {
        segment_size: 16 << 20,
        memory_limit: limit,
        options: UcxConfig::default()
            .with_ucx_tls(tls)
            .with_timeout(Duration::from_secs(5)),
        ..Default::default()
    })
    .unwrap()
}

fn owner_and_reader(tls: &str, path: DataPath) {
    let o = owner(tls, 256 << 20);
    assert!(o.is_owner());
    let caps = o.capabilities();
    assert!(!caps.outlives_process, "objects die with the owner process");
    assert!(caps.cross_process && caps.zero_copy_get);
    assert_eq!(o.server_pid().unwrap(), std::process::id());

    // Keys and the configuration name this process's address.
    let addr = o.options().client.server.clone();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let data = pattern(3 << 20, 1);
    let parts = Payload::new()
        .with(b"NP\n".to_vec())
        .with(bytes::Bytes::from(data.clone()));
    let k = o.put(parts).unwrap();
    let uk: UcxKey = k.decode("ucx").unwrap();
    assert_eq!(uk.server, addr);

    // Local gets hand out the slot itself: no copy, the same memory each time.
    let a = o.get(&k).unwrap().unwrap();
    let b = o.get(&k).unwrap().unwrap();
    assert_eq!(a.as_ptr(), b.as_ptr(), "zero-copy local get");
    assert!(a[..3] == b"NP\n"[..] && a[3..] == data[..]);

    // A plain client (what another process rebuilds from the configuration)
    // reads with the same one-sided get (or the stream path over TCP).
    let mut cfg = o.config();
    if path != DataPath::Auto {
        let mut opts: UcxConfig = cfg.options().unwrap();
        opts.client.data_path = path;
        // Those data paths themselves, not the same-node mapping.
        opts.client.zero_copy = false;
        cfg = proxy_core::ConnectorConfig::new("ucx", &opts);
    }
    let reader = UcxConnector::from_config(&cfg).unwrap();
    assert!(!reader.is_owner());
    assert!(reader.capabilities().outlives_process);
    let r = reader.get(&k).unwrap().unwrap();
    assert!(r == a);
    // Its own buffer, or (zero copy: a client on the owner's node) its own
    // read-only mapping of the owner's segment, pinned while `r` lives.
    assert_ne!(r.as_ptr(), a.as_ptr(), "the reader has its own view");
    assert!(reader.exists(&k).unwrap());
    let ks = o
        .put_batch(
            (0..10)
                .map(|i| Payload::from(pattern(1000 + i, i as u8)))
                .collect(),
        )
        .unwrap();
    let got = reader.get_batch(&ks).unwrap();
    for (i, g) in got.iter().enumerate() {
        assert!(g.as_deref() == Some(&pattern(1000 + i, i as u8)[..]));
    }

    // Evicted while a local `Bytes` is out: the bytes stay valid and intact,
    // every reader sees None, and the slot is freed when the `Bytes` goes.
    let used_before = o.server_stats().unwrap().used;
    o.evict(&k).unwrap();
    assert!(o.get(&k).unwrap().is_none(), "evicted: None for the owner");
    assert!(
        reader.get(&k).unwrap().is_none(),
        "evicted: None for readers"
    );
    assert!(!reader.exists(&k).unwrap());
    assert!(a[3..] == data[..], "pinned bytes intact");
    assert_eq!(o.server_stats().unwrap().used, used_before, "pinned");
    drop((a, b, r));
    // The reader's unpin travels on its pin connection: freed shortly after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while o.server_stats().unwrap().used >= used_before {
        assert!(std::time::Instant::now() < deadline, "freed on drop");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    // A reader's evict is seen by the owner.
    reader.evict(&ks[0]).unwrap();
    assert!(!o.exists(&ks[0]).unwrap());
    assert!(o.get(&ks[0]).unwrap().is_none());

    // Closing the owner stops its server: readers get a clear error, never
    // stale bytes; `Bytes` handed out before stay valid.
    let kept = o.get(&ks[1]).unwrap().unwrap();
    o.close().unwrap();
    assert!(o.put(Payload::from(vec![1u8])).is_err());
    let e = reader.get(&ks[2]);
    assert!(matches!(e, Err(_) | Ok(None)), "stale bytes after close");
    assert!(kept[..] == pattern(1001, 1)[..]);
}

#[test]
fn owner_shm() {
    owner_and_reader("shm,cma,self", DataPath::Auto);
}

#[test]
fn owner_tcp_stream() {
    owner_and_reader("tcp", DataPath::Auto);
}

#[test]
fn owner_tcp_rma() {
    owner_and_reader("tcp", DataPath::Rma);
}

#[test]
fn owner_memory_limit() {
    let o = owner("shm,cma,self", 32 << 20);
    match o.put(Payload::from(vec![0u8; 64 << 20])) {
        Err(Error::TooLarge { size, limit, .. }) => assert!(size > limit),
        other => panic!("{other:?}"),
    }
    let mut keys = Vec::new();
    let err = loop {
        match o.put(Payload::from(vec![7u8; 4 << 20])) {
            Ok(k) => keys.push(k),
            Err(e) => break e,
        }
        assert!(keys.len() < 100, "limit not enforced");
    };
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(keys.len(), 6, "two 16 MiB segments of three 4 MiB slots");
    // A failed batch leaves nothing behind.
    o.evict(&keys[0]).unwrap();
    let before = o.server_stats().unwrap();
    assert!(
        o.put_batch(vec![
            Payload::from(vec![1u8; 4 << 20]),
            Payload::from(vec![2u8; 4 << 20])
        ])
        .is_err()
    );
    assert_eq!(o.server_stats().unwrap().used, before.used);
    for k in &keys[1..] {
        assert!(o.exists(k).unwrap(), "nothing evicted silently");
    }
}

/// Put/evict cycles keep the owner's registered memory flat.
#[test]
fn owner_cycles_flat() {
    let o = owner("shm,cma,self", 64 << 20);
    let mut first = None;
    for i in 0..20_000u32 {
        let k = o
            .put(Payload::from(vec![i as u8; 100 + (i % 7) as usize * 1000]))
            .unwrap();
        assert!(o.get(&k).unwrap().is_some());
        o.evict(&k).unwrap();
        if i == 100 {
            first = Some(o.server_stats().unwrap());
        }
    }
    let (a, b) = (first.unwrap(), o.server_stats().unwrap());
    assert_eq!(
        (a.registered, a.used, a.objects),
        (b.registered, b.used, b.objects)
    );
}
