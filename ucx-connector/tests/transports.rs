//! The connector against a real `proxystore-ucx-server` process, over
//! shared memory (`shm,cma,self`) and over TCP, including faults and bad input.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};
use ucx_connector::TransportConfig;

use bytes::Bytes;
use common::ServerProcess;
use proxy_core::{Connector, Error, FromConfig, Key, Payload};
use ucx_connector::{DataPath, UcxConfig, UcxConnector, UcxKey};

/// How gets go: the data path, and whether same-node reads map the
/// server's segments (zero copy) or copy over that path.
#[derive(Debug, Clone, Copy)]
struct Mode(DataPath, bool);

fn connector(server: &ServerProcess, mode: Mode) -> UcxConnector {
    UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls(&server.tls)
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
    let c2 = UcxConnector::from_config(&c.config()).unwrap();
    assert_eq!(c2.get(&key).unwrap().as_deref(), Some(&b"shared"[..]));
    c.close().unwrap();
    c.close().unwrap();
    assert!(c.get(&key).is_err());
    c2.evict(&key).unwrap();
    assert_eq!(server.tls, tls);
}

fn evicted_then_reused(tls: &str, path: Mode) {
    let server = ServerProcess::start(tls, &[]);
    let c = connector(&server, path);
    let a = c.put(Payload::from(vec![0xAA; 10_000])).unwrap();
    c.evict(&a).unwrap();
    // Same size: the allocator hands out the same slot again.
    let b = c.put(Payload::from(vec![0xBB; 10_000])).unwrap();
    let (ka, kb): (UcxKey, UcxKey) = (a.decode("ucx").unwrap(), b.decode("ucx").unwrap());
    assert_eq!((ka.seg, ka.offset), (kb.seg, kb.offset), "slot reused");
    assert_eq!(
        c.get(&a).unwrap(),
        None,
        "stale key must not see the new object"
    );
    assert!(!c.exists(&a).unwrap());
    assert_eq!(c.get(&b).unwrap().as_deref(), Some(&vec![0xBB; 10_000][..]));
    // A forged key naming the new slot with the old id, or another length.
    let forged = Key::encode(&UcxKey {
        len: 9_999,
        ..kb.clone()
    });
    assert_eq!(c.get(&forged).unwrap(), None);
    let forged = Key::encode(&UcxKey {
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
    let k: UcxKey = key.decode("ucx").unwrap();
    // Not a UCX key at all.
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
        UcxKey {
            offset: u64::MAX - 10,
            ..k.clone()
        },
        UcxKey {
            len: u64::MAX - 10,
            ..k.clone()
        },
        UcxKey {
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
        c.get(&Key::encode(&UcxKey {
            seg: 999,
            ..k.clone()
        }))
        .unwrap(),
        None
    );
    assert_eq!(
        c.get(&Key::encode(&UcxKey {
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
    let nowhere = Key::encode(&UcxKey {
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
    // Batches of 64 MiB take long enough that the kill lands in one.
    const LEN: usize = 4 << 20;
    let keys: Vec<Key> = (0..16)
        .map(|i| c.put(Payload::from(vec![i as u8; LEN])).unwrap())
        .collect();
    assert!(c.get(&keys[0]).unwrap().is_some());
    let c2 = c.clone();
    let k2 = keys.clone();
    let ok_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = ok_seen.clone();
    let reader = std::thread::spawn(move || {
        let ok_seen = seen;
        let t = Instant::now();
        let mut outcomes = (0, 0);
        let mut slowest = Duration::ZERO;
        while t.elapsed() < Duration::from_secs(3) || outcomes.0 == 0 || outcomes.1 == 0 {
            if t.elapsed() > Duration::from_secs(40) {
                break;
            }
            let call = Instant::now();
            match c2.get_batch(&k2) {
                // Complete and correct, or nothing: never torn or foreign bytes.
                Ok(v) => {
                    for (i, g) in v.iter().enumerate() {
                        if let Some(b) = g {
                            assert!(b.len() == LEN && b.iter().all(|&x| x == i as u8));
                        }
                    }
                    outcomes.0 += 1
                }
                // The server can be restarted: peer death is temporary.
                Err(e) => {
                    assert!(e.is_temporary(), "a get during the crash: {e}");
                    outcomes.1 += 1
                }
            }
            ok_seen.store(outcomes.0, std::sync::atomic::Ordering::SeqCst);
            slowest = slowest.max(call.elapsed());
        }
        (outcomes, slowest)
    });
    // Kill the server while batches are being read (after the first one
    // completed: on a loaded machine a batch can take longer than 300 ms).
    std::thread::sleep(Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok_seen.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    let ((ok, err), slowest) = reader.join().unwrap();
    assert!(
        ok > 0,
        "reads before the crash ({ok} ok, {err} failed, slowest {slowest:?})"
    );
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

/// Cancel safety: a get that times out while UCX still owns its buffer (the
/// server is frozen with SIGSTOP, so the emulated TCP get cannot finish) keeps
/// that buffer out of the pool until UCX completes it; the connector stays usable.
#[test]
fn timed_out_get_keeps_its_buffer() {
    let server = ServerProcess::start("tcp", &[]);
    let c = UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls("tcp")
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false) // the one-sided get itself, not a pin
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let data = pattern(1 << 20, 4);
    let key = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..])); // warm: endpoint, rkey, buffer
    assert_eq!(
        c.pool().allocated_bytes(),
        c.pool().idle_bytes(),
        "nothing in use"
    );
    server.freeze(true);
    let t = Instant::now();
    let e = c.get(&key).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // Either UCX still owns the buffer (the common case: the request is in
    // flight), or it completed the request as cancelled inside
    // `ucp_request_cancel` (possible while it had not left the send queue);
    // in both cases the pool only has it back once UCX says it is done.
    // (`ucx_layer::abandoned_request_keeps_buffer_until_completion` shows the
    // first case deterministically.) Either way, no buffer is lost or shared:
    // the one in flight counts as in use, whole, until UCX is done with it.
    let in_use = c.pool().allocated_bytes() - c.pool().idle_bytes();
    let wire = object_server::layout::wire_len(data.len() as u64).unwrap() as usize;
    assert!(
        in_use == 0 || in_use == proxy_core::mem::size_class(wire),
        "after the timeout: {in_use} B of receive buffers in use"
    );
    server.freeze(false);
    // The connector works again, and the abandoned request completes in the
    // background, giving its buffer back.
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
    ($(#[$attr:meta])* $name:ident, $tls:expr, $path:expr, zero_copy = $zc:expr, one_sided = $one_sided:expr) => {
        mod $name {
            use super::*;
            #[test]
            $(#[$attr])*
            fn roundtrip() {
                super::roundtrip($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn evicted_then_reused() {
                super::evicted_then_reused($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn batches() {
                super::batches($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn bad_keys() {
                super::bad_keys($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn memory_limit() {
                super::memory_limit($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn restart() {
                super::restart($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn killed_server() {
                super::killed_server($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn many_threads() {
                super::many_threads($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn zero_copy_outlives() {
                super::zero_copy_outlives($tls, Mode($path, $zc))
            }
            #[test]
            $(#[$attr])*
            fn put_evict_cycles() {
                super::cycles(
                    $tls,
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
                let server = ServerProcess::start($tls, &[]);
                let c = connector(&server, Mode($path, $zc));
                assert!(!c.capabilities().mapped_get, "not known before contact");
                let key = c.put(Payload::from(vec![5u8; 4000])).unwrap();
                assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[5u8; 4000][..]));
                assert_eq!(c.capabilities().one_sided_get, $one_sided);
                assert_eq!(c.capabilities().mapped_get, $zc);
                assert_eq!(c.mapped(), $zc);
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

// Same node: reads map the server's segments (no copy at all) ...
transport_tests!(
    shm,
    "shm,cma,self",
    DataPath::Auto,
    zero_copy = true,
    one_sided = true
);
// ... unless zero copy is off: one-sided gets into receive buffers.
transport_tests!(
    shm_copy,
    "shm,cma,self",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
// Auto picks the stream data path over TCP-only UCX (see the README).
transport_tests!(
    tcp,
    "tcp",
    DataPath::Auto,
    zero_copy = false,
    one_sided = false
);
// The one-sided path works over TCP too (emulated by UCX 1.13, slower).
transport_tests!(
    tcp_rma,
    "tcp",
    DataPath::Rma,
    zero_copy = false,
    one_sided = true
);
// Zero copy does not depend on the fabric: the same over TCP-only UCX.
transport_tests!(
    tcp_mapped,
    "tcp",
    DataPath::Auto,
    zero_copy = true,
    one_sided = false
);

/// The server's data-path hint decides `Auto`: a server whose UCX runs over
/// TCP only asks for the stream path even when this process could do RMA
/// (shared memory enabled here), and the capabilities say so after contact.
#[test]
fn server_hint_decides_auto() {
    let server = ServerProcess::start("tcp", &[]);
    let c = UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls("tcp,shm,cma,self")
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    // Before any contact, this process's own view: RMA.
    assert_eq!(c.data_path(), DataPath::Rma);
    let key = c.put(Payload::from(vec![9u8; 100])).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[9u8; 100][..]));
    assert_eq!(c.data_path(), DataPath::Stream);
    assert!(!c.capabilities().one_sided_get);
}

// Verbs (InfiniBand, RoCE, soft-RoCE rxe): `rc_verbs,ud_verbs,self`, or
// PROXYSTORE_TEST_UCX_VERBS_TLS. Auto picks one-sided gets (RDMA reads).
transport_tests!(
    #[ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"]
    verbs,
    &crate::common::verbs_tls(),
    DataPath::Auto,
    zero_copy = false, // same-node zero copy would bypass the fabric
    one_sided = true
);
