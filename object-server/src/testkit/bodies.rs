//! The test bodies every transport runs, generic over its [`Fabric`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proxy_core::conformance::{assert_repeated, repeated};
use proxy_core::{Bytes, Connector, Error, FromConfig, Key, Payload};

use super::{Client, Fabric, ServerProcess, pattern};
use crate::{ClientTransport, DataPath, ObjectKey, TransportConfig};

/// How gets go: the data path, and whether same-node reads map the server's
/// segments (zero copy) or copy over that path (`None`: the client's
/// default, and nothing asserted about mapping).
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// The data path.
    pub path: DataPath,
    /// Zero copy on or off, or the default.
    pub zero_copy: Option<bool>,
}

/// The connector of the tests: `mode`, a 5 s timeout.
pub fn connector<F: Fabric>(server: &ServerProcess<F>, mode: Mode) -> Client<F> {
    connector_timed(server, mode, Duration::from_secs(5))
}

/// The connector of the tests with `mode` and `timeout`.
pub fn connector_timed<F: Fabric>(
    server: &ServerProcess<F>,
    mode: Mode,
    timeout: Duration,
) -> Client<F> {
    let mut cfg = F::config(&server.addr, &server.fabric)
        .with_data_path(mode.path)
        .with_timeout(timeout);
    if let Some(zc) = mode.zero_copy {
        cfg = cfg.with_zero_copy(zc);
    }
    Client::<F>::new(cfg).unwrap()
}

fn decode<F: Fabric>(key: &Key) -> ObjectKey {
    key.decode(F::Transport::NAME).unwrap()
}

/// Round trips of 0 B .. 5 MiB (scatter-gather payloads), evicts, a rebuilt
/// connector, close.
pub fn roundtrip<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
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
    let c2 = Client::<F>::from_config(&c.config()).unwrap();
    assert_eq!(c2.get(&key).unwrap().as_deref(), Some(&b"shared"[..]));
    c.close().unwrap();
    c.close().unwrap();
    assert!(c.get(&key).is_err());
    c2.evict(&key).unwrap();
    assert_eq!(server.fabric, fabric);
}

/// A slot evicted and handed out again: the stale key reads `None`, as do
/// forged keys naming the new slot with another id or length.
pub fn evicted_then_reused<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let a = c.put(Payload::from(vec![0xAA; 10_000])).unwrap();
    c.evict(&a).unwrap();
    // Same size, once the reuse grace has passed: the allocator hands out
    // the same slot again.
    std::thread::sleep(crate::REUSE_GRACE * 2);
    let b = c.put(Payload::from(vec![0xBB; 10_000])).unwrap();
    let (ka, kb) = (decode::<F>(&a), decode::<F>(&b));
    assert_eq!((ka.seg, ka.offset), (kb.seg, kb.offset), "slot reused");
    assert_eq!(
        c.get(&a).unwrap(),
        None,
        "stale key must not see the new object"
    );
    assert!(!c.exists(&a).unwrap());
    assert_eq!(c.get(&b).unwrap().as_deref(), Some(&vec![0xBB; 10_000][..]));
    // A forged key naming the new slot with the old id, or another length.
    let forged = Key::encode(&ObjectKey {
        len: 9_999,
        ..kb.clone()
    });
    assert_eq!(c.get(&forged).unwrap(), None);
    let forged = Key::encode(&ObjectKey {
        id: kb.id + 1000,
        ..kb.clone()
    });
    assert_eq!(c.get(&forged).unwrap(), None);
}

/// Batches of 300 objects, a third of them evicted; empty batches.
pub fn batches<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
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

/// Keys that are no keys, out of the segment, of absurd lengths, of unknown
/// segments and instances, of no server: clear errors or `None`, quickly.
pub fn bad_keys<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let key = c.put(Payload::from(vec![1u8; 100])).unwrap();
    let k = decode::<F>(&key);
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
        ObjectKey {
            offset: u64::MAX - 10,
            ..k.clone()
        },
        ObjectKey {
            len: u64::MAX - 10,
            ..k.clone()
        },
        ObjectKey {
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
        c.get(&Key::encode(&ObjectKey {
            seg: 999,
            ..k.clone()
        }))
        .unwrap(),
        None
    );
    assert_eq!(
        c.get(&Key::encode(&ObjectKey {
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
    let nowhere = Key::encode(&ObjectKey {
        server: "127.0.0.1:1".into(),
        ..k.clone()
    });
    let e = c.get(&nowhere).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6));
}

/// Random and forged keys, many of them: each is refused as invalid or
/// reads as `None`; never a panic, a hang or another object's bytes.
pub fn random_keys<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let data = pattern(50_000, 3);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let k = decode::<F>(&key);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..2000 {
        let forged = match i % 4 {
            // Random bytes: not a key at all (or a nonsense one).
            0 => Key::from_bytes(
                (0..(next() % 80) as usize)
                    .map(|_| next() as u8)
                    .collect::<Vec<u8>>(),
            ),
            // The real server and instance, random places.
            1 => Key::encode(&ObjectKey {
                seg: (next() % 4) as u32,
                offset: next() % (64 << 20),
                len: next() % (1 << 20),
                id: next(),
                ..k.clone()
            }),
            // The real slot, another id or length.
            2 => Key::encode(&ObjectKey {
                id: k.id ^ (1 + next() % 1000),
                ..k.clone()
            }),
            _ => Key::encode(&ObjectKey {
                len: (k.len + 1 + next() % 1000).min(k.len * 2),
                ..k.clone()
            }),
        };
        match c.get(&forged) {
            Ok(None) | Err(Error::InvalidKey { .. }) => {}
            Ok(Some(b)) => panic!("forged key {i} read {} bytes", b.len()),
            Err(e) => panic!("forged key {i}: {e}"),
        }
    }
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
}

/// A server with `--memory-limit 48M`: too large a put is refused, puts
/// fill it to the limit and then fail ("full"), nothing is evicted silently.
pub fn memory_limit<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &["--memory-limit", "48M"]);
    let c = connector(&server, mode);
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

/// The server stopped (clean exit on SIGTERM) and started again on its
/// port: a temporary error meanwhile, then the old keys read `None`.
pub fn restart<F: Fabric>(fabric: &str, mode: Mode) {
    let mut server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let old = c.put(Payload::from(vec![1u8; 5000])).unwrap();
    assert!(c.get(&old).unwrap().is_some());
    assert!(server.stop().unwrap().success(), "clean exit on SIGTERM");
    let t = Instant::now();
    // Server gone: a clear error (nothing to connect to), never stale bytes.
    let e = c.get(&old).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6));
    let server2 = ServerProcess::<F>::start_on(&server.addr, fabric, &[]);
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

/// A request of repetition `i` failed: say whether the server died.
fn failed<F: Fabric>(server: &mut ServerProcess<F>, i: usize, what: &str, e: &Error) -> ! {
    std::thread::sleep(Duration::from_millis(200));
    match server.exited() {
        Some(st) => panic!("repetition {i}: the new server died ({st:?}) at {what}: {e}"),
        None => panic!("repetition {i}: {what}: {e}"),
    }
}

/// A client that read (`zero_copy`: mapped and pinned) objects of a server
/// that is then killed (SIGKILL), after a new server started on the same
/// port (a get in between fails: no server): its get of an old key is
/// `None`, its one-sided put and get work, and the new server stays alive
/// and serves a fresh client too (exists, put, get); `reps` times in a row,
/// the old client carrying on with each new server. (libfabric 1.17's `shm`
/// handed the old client's stale peer id to the new server, which died
/// with SIGSEGV at the put.)
pub fn old_client_after_restart<F: Fabric>(fabric: &str, zero_copy: bool, reps: usize) {
    let mode = Mode {
        path: DataPath::Auto,
        zero_copy: Some(zero_copy),
    };
    let mut server = ServerProcess::<F>::start(fabric, &[]);
    let addr = server.addr.clone();
    let c = connector(&server, mode);
    let data = |i: usize| pattern(1 << 20, i as u8);
    let mut old = c.put(Payload::from(data(0))).unwrap();
    let mut held = c.get(&old).unwrap().expect("stored");
    for i in 1..=reps {
        server.kill();
        // While no server runs: an error (the client forgets the dead peer).
        let e = c.get(&old).unwrap_err();
        assert!(e.is_temporary(), "repetition {i}: {e}");
        server = ServerProcess::<F>::start_on(&addr, fabric, &[]);
        match c.get(&old) {
            Ok(got) => assert_eq!(got, None, "repetition {i}: an old key on a new server"),
            Err(e) => failed(&mut server, i, "the old client's get of an old key", &e),
        }
        assert_eq!(
            &held[..],
            &data(i - 1)[..],
            "held bytes outlive their server"
        );
        // The old client first (before any other client is known to the new
        // server), then a fresh one, and the old one again.
        let k = match c.put(Payload::from(data(i))) {
            Ok(k) => k,
            Err(e) => failed(&mut server, i, "the old client's put", &e),
        };
        match c.get(&k) {
            Ok(got) => assert_eq!(got.as_deref(), Some(&data(i)[..])),
            Err(e) => failed(&mut server, i, "the old client's get", &e),
        }
        let fresh = connector(&server, mode);
        assert!(!fresh.exists(&old).unwrap(), "repetition {i}");
        assert!(fresh.exists(&k).unwrap(), "repetition {i}");
        assert_eq!(fresh.get(&k).unwrap().as_deref(), Some(&data(i)[..]));
        let k2 = fresh.put(Payload::from(data(i + 1))).unwrap();
        assert_eq!(c.get(&k2).unwrap().as_deref(), Some(&data(i + 1)[..]));
        old = k;
        held = c.get(&old).unwrap().expect("stored");
        std::thread::sleep(Duration::from_millis(100));
        if let Some(st) = server.exited() {
            panic!("repetition {i}: the new server died: {st:?}");
        }
    }
}

/// The server killed (SIGKILL) while another thread reads batches: each
/// batch is whole and right or a temporary error, never torn or foreign
/// bytes, never a hang; the client then works with another server.
/// Objects: the fabric's [`Fabric::KILLED_SERVER_OBJECTS`].
pub fn killed_server<F: Fabric>(fabric: &str, mode: Mode) {
    killed_server_with::<F>(fabric, mode, F::KILLED_SERVER_OBJECTS);
}

/// [`killed_server`] with `count` objects of `len` bytes: large objects make
/// the kill land inside a transfer (a get racing the peer's death), where a
/// fabric reports errors that small ones never see.
pub fn killed_server_with<F: Fabric>(fabric: &str, mode: Mode, (count, len): (usize, usize)) {
    // Room for every object, each in a segment of its own if need be.
    let seg = (len as u64 + (1 << 20)).max(16 << 20);
    let limit = (seg * (count as u64 + 1)).max(256 << 20);
    let (seg, limit) = (seg.to_string(), limit.to_string());
    let mut server =
        ServerProcess::<F>::start(fabric, &["--segment-size", &seg, "--memory-limit", &limit]);
    let c = connector(&server, mode);
    let keys: Vec<Key> = (0..count)
        .map(|i| c.put(Payload::from(vec![i as u8; len])).unwrap())
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
                            assert!(b.len() == len && b.iter().all(|&x| x == i as u8));
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
    assert!(
        ok > 0,
        "reads before the crash ({ok} ok, {err} failed, slowest {slowest:?})"
    );
    assert!(
        err > 0,
        "reads after the crash fail ({ok} ok, {err} failed, slowest {slowest:?})"
    );
    // Bounded by the 5 s timeout (plus one control connect), never a hang.
    assert!(slowest < Duration::from_secs(11), "a get took {slowest:?}");
    // The client stays usable with another server.
    let other = ServerProcess::<F>::start(fabric, &[]);
    let c3 = connector(&other, mode);
    let k = c3.put(Payload::from(vec![3u8; 10])).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&[3u8; 10][..]));
    assert!(
        c.get(&keys[0]).is_err(),
        "the dead server's keys stay an error"
    );
}

/// Eight threads share one connector, single gets and batches.
pub fn many_threads<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = Arc::new(connector(&server, mode));
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

/// [`Fabric::CYCLES`] put/evict cycles: server and client registered
/// memory stay flat, nothing is left behind.
pub fn put_evict_cycles<F: Fabric>(fabric: &str, mode: Mode) {
    let n = F::CYCLES;
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    // Two receive buffers of the small size class at once (what a get whose
    // read was slow holds: the object and its header re-read), so that the
    // pool is warm whichever way the gets below go.
    let warm: Vec<Key> = (0..2)
        .map(|_| c.put(Payload::from(vec![1u8; 100])).unwrap())
        .collect();
    let held = c.get_batch(&warm).unwrap();
    drop(held);
    warm.iter().for_each(|k| c.evict(k).unwrap());
    let mut first = None;
    for i in 0..n {
        let k = c.put(Payload::from(vec![i as u8; 1 + i % 3000])).unwrap();
        if i % 500 == 0 {
            assert_eq!(c.get(&k).unwrap().unwrap().len(), 1 + i % 3000);
        }
        c.evict(&k).unwrap();
        if i == n / 10 {
            first = Some((
                c.server_stats().unwrap(),
                c.pool().expect("the fabric").allocated_bytes(),
            ));
        }
    }
    let (s0, p0) = first.unwrap();
    let (s1, p1) = (
        c.server_stats().unwrap(),
        c.pool().expect("the fabric").allocated_bytes(),
    );
    assert_eq!(s1.objects, 0);
    assert_eq!(s1.used, 0);
    assert_eq!(
        s0.registered, s1.registered,
        "server registered memory is flat"
    );
    assert_eq!(p0, p1, "client registered memory is flat");
}

/// `Bytes` from a get stay valid (and right) after the connector is dropped.
pub fn zero_copy_outlives<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let key = c.put(Payload::from(pattern(100_000, 9))).unwrap();
    let b: Bytes = c.get(&key).unwrap().unwrap();
    let slice = b.slice(10..20);
    drop(c);
    assert_eq!(&b[..], &pattern(100_000, 9)[..]);
    assert_eq!(&slice[..], &pattern(100_000, 9)[10..20]);
}

/// The data path `mode` gives (`one_sided`: RMA, or the stream path) and
/// what the capabilities say of it; with zero copy set, whether reads map.
pub fn data_path<F: Fabric>(fabric: &str, mode: Mode, one_sided: bool) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    if mode.zero_copy.is_some() {
        assert!(!c.capabilities().mapped_get, "not known before contact");
    }
    let key = c.put(Payload::from(vec![5u8; 4000])).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[5u8; 4000][..]));
    // With its reads counted: one-sided reads of the fabric serve gets with
    // zero copy off, a mapping (or the stream) with it on (counted from the
    // second get: the first may read over the fabric before the mapping is
    // made).
    if let (Some(zc), Some(before)) = (mode.zero_copy, F::fabric_reads(&c)) {
        let keys: Vec<Key> = (0..4u8)
            .map(|i| c.put(Payload::from(vec![i; 70_000])).unwrap())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(c.get(k).unwrap().as_deref(), Some(&[i as u8; 70_000][..]));
        }
        let reads = F::fabric_reads(&c).unwrap() - before;
        if !zc && one_sided {
            assert!(
                reads >= 4,
                "zero copy off: 4 gets, {reads} reads of the fabric"
            );
        } else {
            assert_eq!(
                reads, 0,
                "mapped or stream gets read the fabric (zero copy {zc})"
            );
        }
    }
    assert_eq!(c.capabilities().one_sided_get, one_sided);
    if let Some(zc) = mode.zero_copy {
        assert_eq!(c.capabilities().mapped_get, zc);
        assert_eq!(c.mapped(), zc);
    }
    let want = if one_sided {
        DataPath::Rma
    } else {
        DataPath::Stream
    };
    assert_eq!(c.data_path(), want);
}

/// One-sided for real: with the server frozen (SIGSTOP), gets over a
/// same-node `fabric` whose reads need no server CPU (cross-memory attach)
/// keep returning the right bytes (zero copy off: the read itself).
pub fn gets_while_the_server_is_stopped<F: Fabric>(fabric: &str) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = Client::<F>::new(
        F::config(&server.addr, fabric)
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

/// A stopped (SIGSTOP) server: what needs its control plane fails with
/// [`Error::Timeout`] within about one timeout (not a bare I/O error after
/// twice as long), for a client that never reached it (hello) and for one
/// that did (a request on its open connection); after SIGCONT both work.
pub fn stopped_server_times_out<F: Fabric>(fabric: &str, mode: Mode) {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let timeout = Duration::from_secs(2);
    let client = || connector_timed(&server, mode, timeout);
    let known = client();
    let key = known.put(Payload::from(pattern(5000, 3))).unwrap();
    assert!(known.exists(&key).unwrap());
    server.freeze(true);
    let fresh = client();
    for (who, c) in [("a new client", &fresh), ("a known client", &known)] {
        let t0 = Instant::now();
        let e = c.exists(&key).unwrap_err();
        let took = t0.elapsed();
        assert!(matches!(e, Error::Timeout { .. }), "{who}: {e}");
        assert!(e.to_string().contains("timed out"), "{who}: {e}");
        assert!(e.is_temporary(), "{who}: {e}");
        assert!(
            took < timeout * 3 / 2,
            "{who}: failed after {took:?}, timeout {timeout:?}"
        );
    }
    server.freeze(false);
    for c in [&fresh, &known] {
        assert_eq!(c.get(&key).unwrap().as_deref(), Some(&pattern(5000, 3)[..]));
    }
}

/// Many connections that never say hello (here 1000) hold few server
/// threads (new ones close the oldest), and the server keeps serving
/// clients that do.
pub fn idle_connections_are_bounded<F: Fabric>(fabric: &str, mode: Mode) {
    const IDLE: usize = 1000;
    raise_fd_limit(IDLE as u64 + 512);
    let server = ServerProcess::<F>::start(fabric, &[]);
    let c = connector(&server, mode);
    let key = c.put(Payload::from(pattern(3000, 9))).unwrap();
    let pid = server.pid().expect("a running server");
    let before = threads_of(pid);
    let idle: Vec<std::net::TcpStream> = (0..IDLE)
        .map(|i| {
            std::net::TcpStream::connect(&server.addr)
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    // Let the server accept them all (and close what is beyond its bound).
    std::thread::sleep(Duration::from_millis(1500));
    let during = threads_of(pid);
    assert!(
        during < before + IDLE / 4,
        "{IDLE} idle connections: {before} threads before, {during} with them"
    );
    // Still serving, both an open client and a new one.
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&pattern(3000, 9)[..]));
    let fresh = connector(&server, mode);
    assert_eq!(
        fresh.get(&key).unwrap().as_deref(),
        Some(&pattern(3000, 9)[..])
    );
    drop(idle);
}

/// The number of threads of process `pid`.
pub fn threads_of(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Threads: line")
}

/// Raise this process's soft limit of open files to at least `n` (up to the
/// hard limit).
pub fn raise_fd_limit(n: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 && r.rlim_cur < n {
        r.rlim_cur = n.min(r.rlim_max);
        // SAFETY: setting the limit just read, the soft one raised.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    }
}

/// Objects of 2^31 - 1, 2^31 and 2^32 + 7 bytes (lengths that break 32-bit
/// arithmetic in a fabric or a connector) round-trip byte for byte over
/// `fabric`, one at a time, each evicted before the next: one-sided gets into
/// the client's receive buffers (`zero_copy` false) or same-node reads of the
/// mapped segment. The data is a chunk of 1 MiB + 1 bytes repeated, so bytes
/// wrapped at 2^31 or 2^32 differ from the right ones.
pub fn objects_past_2_gib<F: Fabric>(fabric: &str, zero_copy: bool) {
    let server = ServerProcess::<F>::start(fabric, &["--memory-limit", "9G", "--retain", "0"]);
    let mode = Mode {
        path: DataPath::Rma,
        zero_copy: Some(zero_copy),
    };
    let c = connector_timed(&server, mode, Duration::from_secs(120));
    let chunk = Bytes::from(pattern((1 << 20) + 1, 29));
    for len in [(1u64 << 31) - 1, 1 << 31, (1 << 32) + 7] {
        let t = Instant::now();
        let key = c.put(repeated(&chunk, len)).unwrap();
        let put = t.elapsed();
        let t = Instant::now();
        let got = c.get(&key).unwrap().expect("stored");
        let get = t.elapsed();
        assert_repeated(&got, &chunk, len, &format!("a {len}-byte object"));
        eprintln!("{len} B over {fabric} (zero copy {zero_copy}): put {put:?}, get {get:?}");
        drop(got);
        c.evict(&key).unwrap();
        assert_eq!(c.get(&key).unwrap(), None);
    }
}
