//! The connector against a real `proxystore-ofi-server` process, over
//! shared memory (`shm,cma,self`) and over TCP, including faults and bad input.

mod common;

use ofi_connector::TransportConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ServerProcess;
use ofi_connector::{DataPath, OfiConfig, OfiConnector, OfiKey};
use proxy_core::{Connector, Error, FromConfig, Key, Payload};

/// How gets go: the data path, and whether same-node reads map the
/// server's segments (zero copy) or copy over that path.
#[derive(Debug, Clone, Copy)]
struct Mode(DataPath, bool);

fn connector(server: &ServerProcess, mode: Mode) -> OfiConnector {
    OfiConnector::new(
        OfiConfig::new(&server.addr)
            .with_provider(&server.provider)
            .with_data_path(mode.0)
            .with_zero_copy(mode.1)
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn roundtrip(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    for (i, len) in [0usize, 1, 1000, 4096, 1 << 20, 5 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pattern(len, i as u8);
        // Scatter-gather payload: header part + body part.
        let split = len.min(7);
        let p = Payload::new()
            .with(data[..split].to_vec())
            .with(data[split..].to_vec());
        let key = c.put(p).unwrap();
        assert!(
            key.as_bytes().len() < 64,
            "key of {} bytes",
            key.as_bytes().len()
        );
        assert!(c.exists(&key).unwrap());
        assert_eq!(
            c.get(&key).unwrap().as_deref(),
            Some(&data[..]),
            "len {len}"
        );
        c.evict(&key).unwrap();
        assert!(!c.exists(&key).unwrap());
        assert_eq!(c.get(&key).unwrap(), None);
        c.evict(&key).unwrap(); // missing: no error
    }
    // A rebuilt connector (another "process" view) reads the same keys.
    let key = c.put(Payload::from(b"shared".to_vec())).unwrap();
    let c2 = OfiConnector::from_config(&c.config()).unwrap();
    assert_eq!(c2.get(&key).unwrap().as_deref(), Some(&b"shared"[..]));
    c.close().unwrap();
    c.close().unwrap();
    assert!(c.get(&key).is_err());
    c2.evict(&key).unwrap();
    assert_eq!(server.provider, tls);
}

fn evicted_then_reused(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let a = c.put(Payload::from(vec![0xAA; 10_000])).unwrap();
    c.evict(&a).unwrap();
    // Same size: the allocator hands out the same slot again.
    let b = c.put(Payload::from(vec![0xBB; 10_000])).unwrap();
    let (ka, kb): (OfiKey, OfiKey) = (a.decode("ofi").unwrap(), b.decode("ofi").unwrap());
    assert_eq!((ka.seg, ka.offset), (kb.seg, kb.offset), "slot reused");
    assert_eq!(
        c.get(&a).unwrap(),
        None,
        "stale key must not see the new object"
    );
    assert!(!c.exists(&a).unwrap());
    assert_eq!(c.get(&b).unwrap().as_deref(), Some(&vec![0xBB; 10_000][..]));
    // A forged key naming the new slot with the old id, or another length.
    let forged = Key::encode(&OfiKey {
        len: 9_999,
        ..kb.clone()
    });
    assert_eq!(c.get(&forged).unwrap(), None);
    let forged = Key::encode(&OfiKey {
        id: kb.id + 1000,
        ..kb.clone()
    });
    assert_eq!(c.get(&forged).unwrap(), None);
}

fn batches(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let data: Vec<Vec<u8>> = (0..300)
        .map(|i| pattern(i * 37 % 20_000, i as u8))
        .collect();
    let keys = c
        .put_batch(data.iter().cloned().map(Payload::from).collect())
        .unwrap();
    assert_eq!(keys.len(), data.len());
    for k in keys.iter().step_by(3) {
        c.evict(k).unwrap();
    }
    let got = c.get_batch(&keys).unwrap();
    for (i, g) in got.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(g, &None, "evicted {i}");
        } else {
            assert_eq!(g.as_deref(), Some(&data[i][..]), "object {i}");
        }
    }
    assert!(c.put_batch(Vec::new()).unwrap().is_empty());
    assert!(c.get_batch(&[]).unwrap().is_empty());
}

fn bad_keys(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let key = c.put(Payload::from(vec![1u8; 100])).unwrap();
    let k: OfiKey = key.decode("ofi").unwrap();
    // Not a key of the object server at all.
    for junk in [Key::from_bytes(vec![0xff; 3]), Key::from_bytes(Vec::new())] {
        assert!(
            matches!(c.get(&junk), Err(Error::InvalidKey { .. })),
            "{junk:?}"
        );
        assert!(matches!(c.exists(&junk), Err(Error::InvalidKey { .. })));
        assert!(matches!(c.evict(&junk), Err(Error::InvalidKey { .. })));
    }
    // Out of the segment / absurd length: refused before any allocation.
    for bad in [
        OfiKey {
            offset: u64::MAX - 10,
            ..k.clone()
        },
        OfiKey {
            len: u64::MAX - 10,
            ..k.clone()
        },
        OfiKey {
            len: 1 << 40,
            ..k.clone()
        },
    ] {
        match c.get(&Key::encode(&bad)) {
            Err(Error::InvalidKey { .. }) | Ok(None) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(!c.exists(&Key::encode(&bad)).unwrap());
        c.evict(&Key::encode(&bad)).unwrap();
    }
    // Unknown segment, other instance: None.
    assert_eq!(
        c.get(&Key::encode(&OfiKey {
            seg: 999,
            ..k.clone()
        }))
        .unwrap(),
        None
    );
    assert_eq!(
        c.get(&Key::encode(&OfiKey {
            instance: k.instance ^ 1,
            ..k.clone()
        }))
        .unwrap(),
        None
    );
    // The server is fine after all that.
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[1u8; 100][..]));
    // No server there: a temporary error, quickly.
    let t = Instant::now();
    let nowhere = Key::encode(&OfiKey {
        server: "127.0.0.1:1".into(),
        ..k.clone()
    });
    let e = c.get(&nowhere).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6));
}

fn memory_limit(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &["--memory-limit", "48M"]);
    let c = connector(&server, path);
    match c.put(Payload::from(vec![0u8; 64 << 20])) {
        Err(Error::TooLarge { size, limit, .. }) => assert!(size > limit),
        other => panic!("{other:?}"),
    }
    let mut keys = Vec::new();
    let err = loop {
        match c.put(Payload::from(vec![7u8; 4 << 20])) {
            Ok(k) => keys.push(k),
            Err(e) => break e,
        }
        assert!(keys.len() < 100, "limit not enforced");
    };
    assert!(err.to_string().contains("full"), "{err}");
    // 16 MiB segments hold three 4 MiB (+64 B) slots; three segments fit in 48 MiB.
    assert_eq!(keys.len(), 9, "{} puts fit", keys.len());
    // Nothing was evicted silently.
    for k in &keys {
        assert!(c.exists(k).unwrap());
    }
    c.evict(&keys[0]).unwrap();
    let k = c.put(Payload::from(vec![8u8; 4 << 20])).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap().len(), 4 << 20);
    let stats = c.server_stats().unwrap();
    assert!(stats.registered <= 48 << 20, "{stats:?}");
}

fn restart(tls: &str, path: Mode) {
    let mut server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let old = c.put(Payload::from(vec![1u8; 5000])).unwrap();
    assert!(c.get(&old).unwrap().is_some());
    assert!(server.stop().unwrap().success(), "clean exit on SIGTERM");
    let t = Instant::now();
    // Server gone: a clear error (nothing to connect to), never stale bytes.
    let e = c.get(&old).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6));
    let server2 = ServerProcess::start_on(&server.addr, tls, &[]);
    assert_eq!(
        c.get(&old).unwrap(),
        None,
        "old keys are gone with the old instance"
    );
    assert!(!c.exists(&old).unwrap());
    let new = c.put(Payload::from(vec![2u8; 5000])).unwrap();
    assert_eq!(c.get(&new).unwrap().as_deref(), Some(&[2u8; 5000][..]));
    drop(server2);
}

fn killed_server(tls: &str, path: Mode) {
    let mut server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let keys: Vec<Key> = (0..50)
        .map(|i| c.put(Payload::from(vec![i as u8; 200_000])).unwrap())
        .collect();
    assert!(c.get(&keys[0]).unwrap().is_some());
    let c2 = c.clone();
    let k2 = keys.clone();
    let (first_ok, first_ok_rx) = std::sync::mpsc::channel();
    let killed = Arc::new(AtomicBool::new(false));
    let killed2 = killed.clone();
    let reader = std::thread::spawn(move || {
        let mut t = Instant::now();
        let mut outcomes = (0, 0);
        let mut slowest = Duration::ZERO;
        // Read until 3 s after the kill (the kill waits for a first good batch).
        while !killed2.load(Ordering::Relaxed) || t.elapsed() < Duration::from_secs(3) {
            if !killed2.load(Ordering::Relaxed) {
                t = Instant::now();
            }
            let call = Instant::now();
            match c2.get_batch(&k2) {
                // Complete and correct, or nothing: never torn or foreign bytes.
                Ok(v) => {
                    for (i, g) in v.iter().enumerate() {
                        if let Some(b) = g {
                            assert!(b.len() == 200_000 && b.iter().all(|&x| x == i as u8));
                        }
                    }
                    outcomes.0 += 1;
                    let _ = first_ok.send(());
                }
                // The server can be restarted: peer death is temporary.
                Err(e) => {
                    assert!(e.is_temporary(), "a get during the crash: {e}");
                    outcomes.1 += 1
                }
            }
            slowest = slowest.max(call.elapsed());
        }
        (outcomes, slowest)
    });
    // Kill once a batch has been read whole (a fixed delay is too short for
    // a first batch on a loaded machine), then let reads go on against the
    // dead server.
    first_ok_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a first batch read before the crash");
    std::thread::sleep(Duration::from_millis(100));
    server.kill();
    killed.store(true, Ordering::Relaxed);
    let ((ok, err), slowest) = reader.join().unwrap();
    assert!(ok > 0, "reads before the crash");
    assert!(err > 0, "reads after the crash fail");
    // Bounded by the 5 s timeout (plus one control connect), never a hang.
    assert!(slowest < Duration::from_secs(11), "a get took {slowest:?}");
    // The client stays usable with another server.
    let other = ServerProcess::start(tls, &[]);
    let c3 = connector(&other, path);
    let k = c3.put(Payload::from(vec![3u8; 10])).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&[3u8; 10][..]));
    assert!(
        c.get(&keys[0]).is_err(),
        "the dead server's keys stay an error"
    );
}

/// Cancel safety: a get that times out while the provider still owns its
/// buffer (the server is frozen with SIGSTOP, so `tcp;ofi_rxm`, whose target
/// side needs the server's progress, cannot finish it) keeps that buffer out
/// of the pool until the provider completes it; the connector stays usable.
#[test]
fn timed_out_get_keeps_its_buffer() {
    let server = ServerProcess::start("tcp;ofi_rxm", &[]);
    let c = OfiConnector::new(
        OfiConfig::new(&server.addr)
            .with_provider("tcp;ofi_rxm")
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false) // the one-sided read itself, not a pin
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let data = pattern(1 << 20, 4);
    let key = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..])); // warm: peer, key, buffer
    assert_eq!(
        c.pool().allocated_bytes(),
        c.pool().idle_bytes(),
        "nothing in use"
    );
    server.freeze(true);
    let t = Instant::now();
    let e = c.get(&key).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.is_temporary());
    assert!(t.elapsed() < Duration::from_secs(3));
    // The read was posted and is not complete: its buffer is still in use
    // (owned by the operation), whether or not the provider honoured the
    // cancel yet.
    let in_use = c.pool().allocated_bytes() - c.pool().idle_bytes();
    let wire = object_server::layout::wire_len(data.len() as u64).unwrap() as usize;
    assert!(
        in_use == 0 || in_use == proxy_core::mem::size_class(wire),
        "after the timeout: {in_use} B of receive buffers in use"
    );
    server.freeze(false);
    // The connector works again, and the abandoned read completes in the
    // background (canceled or done), giving its buffer back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
        if c.pool().allocated_bytes() == c.pool().idle_bytes() {
            break;
        }
        assert!(Instant::now() < deadline, "abandoned buffer never returned");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One-sided for real: with the server frozen (SIGSTOP), gets over `shm`
/// keep returning the right bytes (cross-memory attach reads the server's
/// memory without the server running); over `tcp;ofi_rxm` they cannot (the
/// target must progress) and fail with a timeout instead. (Zero copy on:
/// `mapped_gets_while_the_server_is_stopped`.)
#[test]
fn gets_while_the_server_is_stopped() {
    let server = ServerProcess::start("shm", &[]);
    let c = OfiConnector::new(
        OfiConfig::new(&server.addr)
            .with_provider("shm")
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false)
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let data: Vec<Vec<u8>> = (0..20)
        .map(|i| pattern(1000 + i * 50_000, i as u8))
        .collect();
    let keys = c
        .put_batch(data.iter().cloned().map(Payload::from).collect())
        .unwrap();
    // Contact first (hello, descriptors): the control plane needs the server.
    for (k, d) in keys.iter().zip(&data) {
        assert_eq!(c.get(k).unwrap().as_deref(), Some(&d[..]));
    }
    server.freeze(true);
    for round in 0..20 {
        let got = c.get_batch(&keys).unwrap();
        for (i, g) in got.iter().enumerate() {
            assert_eq!(
                g.as_deref(),
                Some(&data[i][..]),
                "round {round}, object {i}"
            );
        }
        let i = round % keys.len();
        assert_eq!(c.get(&keys[i]).unwrap().as_deref(), Some(&data[i][..]));
    }
    server.freeze(false);
}

/// Zero copy on, the server frozen (SIGSTOP): `Bytes` already handed out
/// stay readable, and new gets from the mapped segment work too (pins are
/// words in this reader's pin page, no request), as do evicts after SIGCONT.
#[test]
fn mapped_gets_while_the_server_is_stopped() {
    let server = ServerProcess::start("shm", &[]);
    let c = OfiConnector::new(
        OfiConfig::new(&server.addr)
            .with_provider("shm")
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let data = pattern(3 << 20, 9);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    assert!(c.mapped());
    server.freeze(true);
    assert_eq!(&held[..], &data[..]);
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    drop(held);
    server.freeze(false);
    c.evict(&key).unwrap();
    assert_eq!(c.get(&key).unwrap(), None);
}
fn many_threads(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = Arc::new(connector(&server, path));
    let data: Vec<Vec<u8>> = (0..64).map(|i| pattern(1000 + i * 1500, i as u8)).collect();
    let keys = c
        .put_batch(data.iter().cloned().map(Payload::from).collect())
        .unwrap();
    let data = Arc::new(data);
    let keys = Arc::new(keys);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (c, data, keys) = (c.clone(), data.clone(), keys.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    let i = (t * 7 + round * 13) % keys.len();
                    assert_eq!(c.get(&keys[i]).unwrap().as_deref(), Some(&data[i][..]));
                    if round % 10 == 0 {
                        let got = c.get_batch(&keys[..]).unwrap();
                        for (j, g) in got.iter().enumerate() {
                            assert_eq!(g.as_deref(), Some(&data[j][..]));
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn cycles(tls: &str, path: Mode, n: usize) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let mut first = None;
    for i in 0..n {
        let k = c.put(Payload::from(vec![i as u8; 1 + i % 3000])).unwrap();
        if i % 500 == 0 {
            assert_eq!(c.get(&k).unwrap().unwrap().len(), 1 + i % 3000);
        }
        c.evict(&k).unwrap();
        if i == n / 10 {
            first = Some((c.server_stats().unwrap(), c.pool().allocated_bytes()));
        }
    }
    let (s0, p0) = first.unwrap();
    let (s1, p1) = (c.server_stats().unwrap(), c.pool().allocated_bytes());
    assert_eq!(s1.objects, 0);
    assert_eq!(s1.used, 0);
    assert_eq!(
        s0.registered, s1.registered,
        "server registered memory is flat"
    );
    assert_eq!(p0, p1, "client registered memory is flat");
}

fn zero_copy_outlives(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let key = c.put(Payload::from(pattern(100_000, 9))).unwrap();
    let b: Bytes = c.get(&key).unwrap().unwrap();
    let slice = b.slice(10..20);
    drop(c);
    assert_eq!(&b[..], &pattern(100_000, 9)[..]);
    assert_eq!(&slice[..], &pattern(100_000, 9)[10..20]);
}

macro_rules! transport_tests {
    ($(#[$attr:meta])* $name:ident, $provider:expr, $path:expr, zero_copy = $zc:expr, one_sided = $one_sided:expr) => {
        mod $name {
            use super::*;
            #[test]
            $(#[$attr])*
            fn roundtrip() {
                super::roundtrip($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn evicted_then_reused() {
                super::evicted_then_reused($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn batches() {
                super::batches($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn bad_keys() {
                super::bad_keys($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn memory_limit() {
                super::memory_limit($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn restart() {
                super::restart($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn killed_server() {
                super::killed_server($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn many_threads() {
                super::many_threads($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn zero_copy_outlives() {
                super::zero_copy_outlives($provider, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn put_evict_cycles() {
                super::cycles(
                    $provider,
                    Mode($path, $zc),
                    if cfg!(debug_assertions) {
                        20_000
                    } else {
                        100_000
                    },
                )
            }
            #[test]
            $(#[$attr])*
            fn data_path() {
                let server = ServerProcess::start($provider, &[]);
                let c = connector(&server, Mode($path, $zc));
                let key = c.put(Payload::from(vec![5u8; 4000])).unwrap();
                assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[5u8; 4000][..]));
                assert_eq!(c.capabilities().one_sided_get, $one_sided);
                assert_eq!(c.capabilities().mapped_get, $zc);
                let want = if $one_sided {
                    DataPath::Rma
                } else {
                    DataPath::Stream
                };
                assert_eq!(c.data_path(), want);
            }
        }
    };
}

// Same node, zero copy on: reads map the server's segments.
transport_tests!(
    shm,
    "shm",
    DataPath::Auto,
    zero_copy = true,
    one_sided = true
);
// Zero copy off: Auto picks one-sided reads on both providers.
transport_tests!(
    shm_copy,
    "shm",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
transport_tests!(
    tcp,
    "tcp;ofi_rxm",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
// The stream data path (server writes to the control connection) as a baseline.
transport_tests!(
    tcp_stream,
    "tcp;ofi_rxm",
    DataPath::Stream,
    zero_copy = false,
    one_sided = false
);
// Verbs (InfiniBand, RoCE, soft-RoCE rxe): `verbs;ofi_rxm`, or
// PROXYSTORE_TEST_OFI_VERBS_PROVIDER. Auto picks one-sided reads.
transport_tests!(
    #[ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"]
    verbs,
    &crate::common::verbs_provider(),
    DataPath::Auto,
    zero_copy = false, // same-node zero copy would bypass the fabric
    one_sided = true
);
