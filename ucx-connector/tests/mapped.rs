//! Same-node gets without a copy: the reader maps the server's segments and
//! pins what it reads. Pins against evicts, a frozen, killed or restarted
//! server, a reader killed while it holds pins, bad unpins, and memory over
//! 100 000 put/pin/evict cycles; against a real `proxystore-ucx-server`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ServerProcess;
use object_server::MAPPED_COPY_BELOW;
use object_server::proto::{self, Request, Response};
use object_server::testkit::pattern;
use proxy_core::{Connector, Key, Payload};
use ucx_connector::{TransportConfig, UcxConfig, UcxConnector, UcxKey};

const TLS: &str = "shm,cma,self";
const CHILD_ENV: &str = "PROXYSTORE_MAPPED_TEST_CHILD";

fn connector(server: &ServerProcess, zero_copy: bool) -> UcxConnector {
    UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls(&server.fabric)
            .with_zero_copy(zero_copy)
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap()
}

/// Wait until `f` holds (polling), or fail after 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A reader whose gets all read the mapped segments never initializes the
/// fabric (no UCX context, no endpoint): a fresh process resolving a
/// same-node proxy skips that cost. A copying reader does initialize it.
#[test]
fn mapped_readers_never_initialize_the_fabric() {
    let server = ServerProcess::start(TLS, &[]);
    let writer = connector(&server, true);
    let big = pattern(3 << 20, 7);
    let small = pattern(100, 8);
    let kb = writer.put(Payload::from(big.clone())).unwrap();
    let ks = writer.put(Payload::from(small.clone())).unwrap();
    let reader = connector(&server, true);
    assert!(!reader.fabric_initialized());
    assert_eq!(reader.get(&kb).unwrap().as_deref(), Some(&big[..]));
    assert_eq!(reader.get(&ks).unwrap().as_deref(), Some(&small[..]));
    let both = reader.get_batch(&[kb.clone(), ks.clone()]).unwrap();
    assert_eq!(both[0].as_deref(), Some(&big[..]));
    assert_eq!(both[1].as_deref(), Some(&small[..]));
    assert!(reader.exists(&kb).unwrap());
    assert!(reader.mapped());
    assert!(
        !reader.fabric_initialized(),
        "a mapped reader initialized the fabric"
    );
    let copying = connector(&server, false);
    assert!(!copying.fabric_initialized());
    assert_eq!(copying.get(&kb).unwrap().as_deref(), Some(&big[..]));
    assert!(
        copying.fabric_initialized(),
        "a one-sided get without the fabric?"
    );
}

/// A same-node writer (zero copy on) puts large objects through a writable
/// mapping of the server's segments, never initializing the fabric; what it
/// put (one part or several, one object or a batch) reads back intact over
/// the fabric. A copying writer's puts do initialize it.
#[test]
fn mapped_writers_put_without_the_fabric() {
    let server = ServerProcess::start(TLS, &[]);
    let writer = connector(&server, true);
    let (a, b) = (pattern(3 << 20, 11), pattern(1 << 20, 12));
    let one = writer.put(Payload::from(a.clone())).unwrap();
    let two = writer
        .put(Payload::default().with(a.clone()).with(b.clone()))
        .unwrap();
    let batch = writer
        .put_batch(vec![Payload::from(b.clone()), Payload::from(a.clone())])
        .unwrap();
    assert!(
        !writer.fabric_initialized(),
        "a same-node writer's large puts initialized the fabric"
    );
    let reader = connector(&server, false);
    let ab: Vec<u8> = a.iter().chain(&b).copied().collect();
    assert_eq!(reader.get(&one).unwrap().as_deref(), Some(&a[..]));
    assert_eq!(reader.get(&two).unwrap().as_deref(), Some(&ab[..]));
    assert_eq!(reader.get(&batch[0]).unwrap().as_deref(), Some(&b[..]));
    assert_eq!(reader.get(&batch[1]).unwrap().as_deref(), Some(&a[..]));
    let copying = connector(&server, false);
    let k = copying.put(Payload::from(b.clone())).unwrap();
    assert!(
        copying.fabric_initialized(),
        "a one-sided put without the fabric?"
    );
    assert_eq!(reader.get(&k).unwrap().as_deref(), Some(&b[..]));
}

/// The `Bytes` of a mapped get point into the server's segment: two gets of
/// one object are the same memory (no copy), a copying client's are not.
#[test]
fn gets_are_the_segment_itself() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let data = pattern(3 << 20, 1);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let a = c.get(&key).unwrap().unwrap();
    let b = c.get(&key).unwrap().unwrap();
    assert_eq!(&a[..], &data[..]);
    assert_eq!(a.as_ptr(), b.as_ptr(), "both views of the one mapping");
    assert!(c.mapped() && c.capabilities().mapped_get);
    assert_eq!(c.server_stats().unwrap().pins, 2);
    drop((a, b));
    eventually("unpinned", || c.server_stats().unwrap().pins == 0);
    // Zero copy off: every get copies into its own buffer.
    let d = connector(&server, false);
    let x = d.get(&key).unwrap().unwrap();
    let y = d.get(&key).unwrap().unwrap();
    assert_eq!(&x[..], &data[..]);
    assert_ne!(x.as_ptr(), y.as_ptr());
    assert!(!d.mapped() && !d.capabilities().mapped_get);
    assert_eq!(d.server_stats().unwrap().pins, 0);
}

/// A server with private segments (`--no-zero-copy`): the reader notices at
/// the first segment and copies from then on.
#[test]
fn private_segments_are_copied() {
    let server = ServerProcess::start(TLS, &["--no-zero-copy"]);
    let c = connector(&server, true);
    let data = pattern(100_000, 2);
    let key = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    assert!(!c.mapped());
    assert_eq!(c.server_stats().unwrap().pins, 0);
}

/// Objects under `MAPPED_COPY_BELOW` are copied out of the mapping, checked
/// like a one-sided get, with no pin and no server involved: they read while
/// the server is frozen, and an evicted one reads as `None`.
#[test]
fn small_objects_are_copied_from_the_mapping() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let small: Vec<(Key, Vec<u8>)> = [0usize, 1, 1000, MAPPED_COPY_BELOW as usize - 1]
        .into_iter()
        .map(|len| {
            let d = pattern(len, len as u8);
            (c.put(Payload::from(d.clone())).unwrap(), d)
        })
        .collect();
    let big = pattern(MAPPED_COPY_BELOW as usize, 8);
    let kb = c.put(Payload::from(big.clone())).unwrap();
    let held: Vec<Bytes> = small
        .iter()
        .map(|(k, d)| {
            let b = c.get(k).unwrap().unwrap();
            assert_eq!(&b[..], &d[..]);
            b
        })
        .collect();
    assert!(c.mapped());
    assert_eq!(
        c.server_stats().unwrap().pins,
        0,
        "small objects are not pinned"
    );
    let b = c.get(&kb).unwrap().unwrap();
    assert_eq!(
        c.server_stats().unwrap().pins,
        1,
        "from the threshold on, pinned"
    );
    drop(b);
    c.evict(&small[2].0).unwrap();
    server.freeze(true);
    for (i, (k, d)) in small.iter().enumerate() {
        let got = c.get(k).unwrap();
        if i == 2 {
            assert_eq!(got, None, "evicted");
        } else {
            assert_eq!(got.as_deref(), Some(&d[..]), "frozen server, object {i}");
        }
    }
    server.freeze(false);
    drop(held);
}

/// Evict while pinned: new gets see `None` at once, the held `Bytes` keep
/// the object's bytes while other objects are put, and the slot is freed
/// after the last unpin.
#[test]
fn evict_while_pinned() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let data = pattern(1 << 20, 3);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    let slice = held.slice(1000..2000);
    c.evict(&key).unwrap();
    assert_eq!(c.get(&key).unwrap(), None, "evicted: None at once");
    assert!(!c.exists(&key).unwrap());
    let s = c.server_stats().unwrap();
    assert_eq!((s.objects, s.pins), (0, 1));
    assert!(
        s.used > data.len() as u64,
        "the pinned slot is still in use"
    );
    // Fill the segment with other objects: none lands in the pinned slot.
    let others: Vec<Key> = (0..12)
        .map(|i| c.put(Payload::from(vec![0xEE ^ i as u8; 1 << 20])).unwrap())
        .collect();
    assert_eq!(&held[..], &data[..], "held bytes intact");
    assert_eq!(&slice[..], &data[1000..2000]);
    for k in &others {
        c.evict(k).unwrap();
    }
    drop(held);
    assert_eq!(c.server_stats().unwrap().pins, 1, "the slice still pins");
    drop(slice);
    eventually("slot freed after the last unpin", || {
        let s = c.server_stats().unwrap();
        s.used == 0 && s.pins == 0
    });
}

/// The server SIGSTOPped: held `Bytes` stay readable, and new gets of
/// objects in segments already mapped here work too (a pin is a word written
/// into this reader's pin page, no request); an evict made before the
/// freeze reads as `None`. After SIGCONT, every pin is accounted for.
#[test]
fn frozen_server() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let data = pattern(2 << 20, 4);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let gone = c.put(Payload::from(pattern(2 << 20, 5))).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    c.evict(&gone).unwrap();
    server.freeze(true);
    assert_eq!(&held[..], &data[..]);
    let t = Instant::now();
    let again = c.get(&key).unwrap().unwrap();
    assert_eq!(&again[..], &data[..]);
    assert_eq!(c.get(&gone).unwrap(), None);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    drop(held); // never blocks on the frozen server
    server.freeze(false);
    assert_eq!(c.server_stats().unwrap().pins, 1);
    drop(again);
    eventually("every pin released", || c.server_stats().unwrap().pins == 0);
}

/// Bytes held when the server is killed stay readable and unchanged (the
/// mapping keeps the pages); the next get is a clear, temporary error.
#[test]
fn killed_server_keeps_held_bytes() {
    let mut server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let data = pattern(5 << 20, 5);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    server.kill();
    assert_eq!(&held[..], &data[..]);
    let t = Instant::now();
    let e = c.get(&key).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A new server on the same address: the old key is gone (None), not
    // the new server's bytes, and the held bytes are still the old ones.
    let server2 = ServerProcess::start_on(&server.addr, TLS, &[]);
    let other = c.put(Payload::from(vec![7u8; 5 << 20])).unwrap();
    assert_eq!(c.get(&key).unwrap(), None);
    assert_eq!(c.get(&other).unwrap().as_deref(), Some(&[7u8; 5 << 20][..]));
    assert_eq!(&held[..], &data[..]);
    drop(server2);
}

/// Child side of `killed_reader_releases_its_pins` (not a test of its own):
/// get the keys given (pinning them), say so, and wait to be killed.
#[test]
#[ignore = "child-process entry point"]
fn pinning_child_entry() {
    let spec = std::env::var(CHILD_ENV).expect("run by killed_reader_releases_its_pins");
    let mut parts = spec.split(' ');
    let addr = parts.next().unwrap().to_string();
    let keys: Vec<Key> = parts.map(|k| Key::from_hex(k).unwrap()).collect();
    let c = UcxConnector::new(UcxConfig::new(&addr).with_ucx_tls(TLS)).unwrap();
    let held: Vec<Bytes> = c
        .get_batch(&keys)
        .unwrap()
        .into_iter()
        .map(|b| b.unwrap())
        .collect();
    assert!(c.mapped());
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@pinned {}", held.len()).unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
    drop(held);
}

/// A reader killed (SIGKILL) while it holds pins: its pin connection closes
/// with it, so the server frees the evicted slots at once.
#[test]
fn killed_reader_releases_its_pins() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let keys: Vec<Key> = (0..8)
        .map(|i| c.put(Payload::from(pattern(300_000, i))).unwrap())
        .collect();
    let spec = std::iter::once(server.addr.clone())
        .chain(keys.iter().map(|k| k.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "pinning_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("@@pinned") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
    }
    assert_eq!(c.server_stats().unwrap().pins, 8);
    for k in &keys {
        c.evict(k).unwrap();
    }
    let s = c.server_stats().unwrap();
    assert_eq!((s.objects, s.pins), (0, 8));
    assert!(s.used >= 8 * 300_000, "pinned slots stay in use");
    child.kill().unwrap();
    child.wait().unwrap();
    eventually("the dead reader's pins released", || {
        let s = c.server_stats().unwrap();
        s.pins == 0 && s.used == 0
    });
}

/// A connection can release only its own pins: unpins of another
/// connection's pins (or of nothing) are ignored.
#[test]
fn unpins_of_others_are_ignored() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let key = c.put(Payload::from(pattern(100_000, 6))).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    let k: UcxKey = key.decode("ucx").unwrap();
    let loc = proto::Loc {
        seg: k.seg,
        offset: k.offset,
        len: k.len,
        id: k.id,
    };
    let mut s = TcpStream::connect(&server.addr).unwrap();
    assert!(matches!(
        object_server::testkit::access::greet(&mut s, "ucx"),
        Response::Hello { .. }
    ));
    proto::write_frame(&mut s, &Request::Unpin(vec![loc; 5])).unwrap();
    c.evict(&key).unwrap();
    // A request after the unpins: they have been handled.
    proto::write_frame(&mut s, &Request::Stats).unwrap();
    match proto::read_frame::<Response>(&mut s).unwrap() {
        Some(Response::Stats(st)) => assert_eq!(st.pins, 1, "{st:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(&held[..], &pattern(100_000, 6)[..]);
    // This connection's own pin, then its unpin.
    proto::write_frame(&mut s, &Request::Pin(vec![loc])).unwrap();
    match proto::read_frame::<Response>(&mut s).unwrap() {
        Some(Response::Pinned(v)) => assert_eq!(v, vec![false], "evicted: not pinned"),
        other => panic!("{other:?}"),
    }
    drop(held);
    eventually("freed", || c.server_stats().unwrap().used == 0);
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 100 000 put/pin/evict cycles (half of them pinned, the other half small
/// objects copied out of the mapping; a third evicted while held):
/// server memory, pins and this process's memory stay flat.
#[test]
fn put_pin_evict_cycles_flat() {
    let server = ServerProcess::start(TLS, &[]);
    let c = connector(&server, true);
    let n = 100_000;
    let mut first = None;
    for i in 0..n {
        // Half pinned, half small enough to be copied out of the mapping.
        let len = if i % 2 == 0 {
            MAPPED_COPY_BELOW as usize + i % 5000
        } else {
            1 + i % 5000
        };
        let k = c.put(Payload::from(vec![i as u8; len])).unwrap();
        let b = c.get(&k).unwrap().unwrap();
        assert!(b.len() == len && b[len - 1] == i as u8);
        if i % 3 == 0 {
            c.evict(&k).unwrap(); // evicted while pinned
            drop(b);
        } else {
            drop(b);
            c.evict(&k).unwrap();
        }
        if i == n / 10 {
            first = Some((c.server_stats().unwrap(), rss()));
        }
    }
    let (s0, r0) = first.unwrap();
    eventually("all unpinned and freed", || {
        let s = c.server_stats().unwrap();
        s.pins == 0 && s.used == 0 && s.objects == 0
    });
    let (s1, r1) = (c.server_stats().unwrap(), rss());
    assert_eq!(s0.registered, s1.registered, "server memory is flat");
    assert_eq!(s0.segments, s1.segments);
    assert!(
        r1 < r0 + (8 << 20),
        "reader memory grew from {r0} to {r1} bytes"
    );
}
