//! Access control of the object server, against a real server process: the
//! job's secret, write descriptors only for reservations, uncommitted objects
//! invisible to one-sided readers, the idle exit of a spawned server.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::ServerProcess;
use object_server::proto::{self, Loc, Request, Response};
use object_server::testkit::access::ask;
use proxy_core::{Connector, Key, Payload, Store};
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector, UcxKey};

const TLS: &str = "shm,cma,self";
const SECRET: &str = "s3cret-7f2a9c";

fn secret_file(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("ps-secret-{name}-{}", std::process::id()));
    std::fs::write(&p, format!("{SECRET}\n")).unwrap();
    p
}

fn client(server: &ServerProcess, secret: Option<&str>) -> UcxConnector {
    let mut cfg = UcxConfig::new(&server.addr)
        .with_ucx_tls(TLS)
        .with_timeout(Duration::from_secs(5));
    if let Some(s) = secret {
        cfg = cfg.with_secret(s);
    }
    UcxConnector::new(cfg).unwrap()
}

/// Say hello on `s` proving `secret` (none: answer no challenge).
fn hello(s: &mut TcpStream, secret: Option<&str>) -> Response {
    let secret = secret.map(|k| object_server::Secret::new(k).unwrap());
    object_server::testkit::access::greet_with(s, "ucx", secret.as_ref())
}

/// Say hello with what this process's clients bring with nothing
/// configured: the user's secret.
fn user_hello(s: &mut TcpStream) -> Response {
    object_server::testkit::access::greet(s, "ucx")
}

fn unauthorized(r: &Response) -> bool {
    matches!(r, Response::Unauthorized(m) if m.contains("unauthorized"))
}

#[test]
fn a_secret_keeps_out_clients_without_it() {
    let file = secret_file("keep-out");
    // Over TCP: on the server's Unix-domain socket, a process of its own
    // user needs no secret (`other_user.rs`).
    let server = ServerProcess::start(
        TLS,
        &["--secret-file", file.to_str().unwrap(), "--no-unix-socket"],
    );
    let good = client(&server, Some(SECRET));
    let key = good.put(Payload::from(vec![7u8; 3000])).unwrap();
    assert_eq!(good.get(&key).unwrap().as_deref(), Some(&[7u8; 3000][..]));

    // With nothing configured a client brings its user's secret, which is
    // not the job's.
    for (secret, why) in [(None, "wrong secret"), (Some("wrong"), "wrong secret")] {
        let c = client(&server, secret);
        for e in [
            c.put(Payload::from(vec![1u8; 10])).unwrap_err(),
            c.get(&key).unwrap_err(),
            c.exists(&key).unwrap_err(),
            c.evict(&key).unwrap_err(),
        ] {
            let m = e.to_string();
            assert!(m.contains("unauthorized") && m.contains(why), "{m}");
            assert!(!e.is_temporary(), "{m}");
        }
    }
    // The raw protocol: nothing before an accepted hello, no descriptor after
    // a refused one, and a refused put stores nothing.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    assert!(unauthorized(&ask(
        &mut s,
        &Request::Segment {
            seg: 0,
            write: false
        }
    )));
    assert!(unauthorized(&ask(&mut s, &Request::Stats)));
    // A hello is answered with a challenge, and nothing but a proof of the
    // secret gets further.
    let bare = Request::Hello {
        version: proto::VERSION,
        transport: "ucx".into(),
        secret: None,
    };
    assert!(matches!(ask(&mut s, &bare), Response::Challenge { .. }));
    match ask(&mut s, &Request::Stats) {
        Response::Unauthorized(m) => assert!(m.contains("needs the job's secret"), "{m}"),
        other => panic!("a request after a challenge: {other:?}"),
    }
    match hello(&mut s, None) {
        Response::Unauthorized(m) => assert!(m.contains("needs the job's secret"), "{m}"),
        other => panic!("a hello without a secret: {other:?}"),
    }
    assert!(unauthorized(&hello(&mut s, Some("wrong"))));
    // The secret itself in the hello (as before protocol 8) is refused.
    let old = Request::Hello {
        version: proto::VERSION,
        transport: "ucx".into(),
        secret: Some(SECRET.as_bytes().to_vec()),
    };
    match ask(&mut s, &old) {
        Response::Error(m) => assert!(m.contains("never carries the secret"), "{m}"),
        other => panic!("a hello with the secret in it: {other:?}"),
    }
    assert!(unauthorized(&ask(
        &mut s,
        &Request::Segment {
            seg: 0,
            write: false
        }
    )));
    proto::write_frame(&mut s, &Request::Put { len: 5 }).unwrap();
    s.write_all(b"hello").unwrap();
    assert!(unauthorized(&proto::read_frame(&mut s).unwrap().unwrap()));
    let k: UcxKey = key.decode("ucx").unwrap();
    let loc = Loc {
        seg: k.seg,
        offset: k.offset,
        len: k.len,
        id: k.id,
    };
    assert!(unauthorized(&ask(&mut s, &Request::Evict(loc))));
    assert!(unauthorized(&ask(&mut s, &Request::Read(loc))));
    assert_eq!(good.server_stats().unwrap().objects, 1);
    assert!(good.exists(&key).unwrap());
    // With the secret, the same connection is served.
    assert!(matches!(
        hello(&mut s, Some(SECRET)),
        Response::Hello { .. }
    ));
    assert!(matches!(
        ask(
            &mut s,
            &Request::Segment {
                seg: 0,
                write: false
            }
        ),
        Response::Segment(Some(_))
    ));
    std::fs::remove_file(file).unwrap();
}

#[test]
fn the_secret_never_travels() {
    let file = secret_file("travel");
    let server = ServerProcess::start(
        TLS,
        &["--secret-file", file.to_str().unwrap(), "--no-unix-socket"],
    );
    let c = client(&server, Some(SECRET));
    let cfg = c.config();
    let json = serde_json::to_string(&cfg).unwrap();
    let debug = format!("{c:?} {cfg:?} {:?}", c.options());
    let store = Store::new("access-travel", c).unwrap();
    let p = store.proxy(vec![1u8, 2, 3]).unwrap();
    let wire = p.to_bytes().unwrap();
    let needle = SECRET.as_bytes();
    for (what, bytes) in [
        ("proxy", &wire[..]),
        ("config JSON", json.as_bytes()),
        ("Debug", debug.as_bytes()),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the secret is in the {what}"
        );
    }
    // Whoever resolves the proxy brings the secret from its own environment:
    // without it, resolving fails as unauthorized (here: a connector rebuilt
    // from the configuration that travelled).
    let rebuilt = UcxConnector::new(cfg.options::<UcxConfig>().unwrap()).unwrap();
    let m = rebuilt
        .put(Payload::from(vec![0u8; 4]))
        .unwrap_err()
        .to_string();
    assert!(m.contains("unauthorized"), "{m}");
    std::fs::remove_file(file).unwrap();
}

#[test]
fn write_descriptors_only_for_reservations() {
    let server = ServerProcess::start(TLS, &[]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    assert!(matches!(user_hello(&mut s), Response::Hello { .. }));
    // Readers get the read descriptor of any segment...
    assert!(matches!(
        ask(
            &mut s,
            &Request::Segment {
                seg: 0,
                write: false
            }
        ),
        Response::Segment(Some(_))
    ));
    // ...but write access only with a reservation in that segment on the
    // same connection.
    assert!(unauthorized(&ask(
        &mut s,
        &Request::Segment {
            seg: 0,
            write: true
        }
    )));
    let Response::Put(loc) = ask(
        &mut s,
        &Request::Reserve {
            len: 1000,
            phase: 0,
        },
    ) else {
        panic!("reserve refused");
    };
    assert!(matches!(
        ask(
            &mut s,
            &Request::Segment {
                seg: loc.seg,
                write: true
            }
        ),
        Response::Segment(Some(_))
    ));
    let mut other = TcpStream::connect(&server.addr).unwrap();
    assert!(matches!(user_hello(&mut other), Response::Hello { .. }));
    assert!(unauthorized(&ask(
        &mut other,
        &Request::Segment {
            seg: loc.seg,
            write: true
        }
    )));
}

/// A key for an object that is reserved but not committed (its payload is
/// still being written) reads as `None` on every data path, never as bytes;
/// after the commit it reads as the object.
#[test]
fn an_object_being_written_reads_as_none() {
    let server = ServerProcess::start(TLS, &[]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let Response::Hello { instance, .. } = user_hello(&mut s) else {
        panic!("hello refused");
    };
    let len = 1 << 20;
    let Response::Put(loc) = ask(&mut s, &Request::Reserve { len, phase: 0 }) else {
        panic!("reserve refused");
    };
    let key = Key::encode(&UcxKey {
        server: server.addr.clone(),
        instance,
        seg: loc.seg,
        offset: loc.offset,
        len: loc.len,
        id: loc.id,
    });
    let on = |path| {
        UcxConnector::new(
            UcxConfig::new(&server.addr)
                .with_ucx_tls(TLS)
                .with_data_path(path),
        )
        .unwrap()
    };
    let (rma, stream) = (on(DataPath::Rma), on(DataPath::Stream));
    for c in [&rma, &stream] {
        assert_eq!(c.get(&key).unwrap(), None);
        assert_eq!(
            c.get_batch(&[key.clone(), key.clone()]).unwrap(),
            [None, None]
        );
        assert!(!c.exists(&key).unwrap());
    }
    assert!(matches!(ask(&mut s, &Request::Commit(loc)), Response::Ok));
    for c in [&rma, &stream] {
        assert_eq!(c.get(&key).unwrap().map(|b| b.len()), Some(len as usize));
        assert!(c.exists(&key).unwrap());
    }
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn running(pid: u32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = st
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// A server spawned on demand stops by itself once it has held no object and
/// served no client for its idle time, and not while it holds objects.
#[test]
fn an_idle_spawned_server_exits() {
    let addr = free_addr();
    let mut cfg = UcxConfig::new(&addr)
        .with_ucx_tls(TLS)
        .with_timeout(Duration::from_secs(20))
        .with_spawn(["--segment-size", "8M", "--memory-limit", "64M"]);
    cfg.client.spawn_idle_exit_s = 1;
    let c = UcxConnector::new(cfg.clone()).unwrap();
    let key = c.put(Payload::from(vec![3u8; 100])).unwrap();
    let pid = c.server_pid().unwrap();
    c.close().unwrap();
    drop(c);
    // No client, but an object: it stays.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(running(pid), "the server exited while holding an object");
    let c = UcxConnector::new(cfg).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[3u8; 100][..]));
    c.evict(&key).unwrap();
    c.close().unwrap();
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(15);
    while running(pid) {
        assert!(Instant::now() < deadline, "idle server {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Over `tcp` with zero copy off (every get needs the server), and over
/// shared memory with zero copy on: a stopped server is a timeout error
/// within about one timeout.
#[test]
fn a_stopped_server_is_a_timeout() {
    use object_server::testkit::{Mode, stopped_server_times_out};
    stopped_server_times_out::<common::UcxTests>(
        "tcp,self",
        Mode {
            path: DataPath::Auto,
            zero_copy: Some(false),
        },
    );
    stopped_server_times_out::<common::UcxTests>(
        TLS,
        Mode {
            path: DataPath::Auto,
            zero_copy: Some(true),
        },
    );
}

/// 1000 connections that never say hello do not make 1000 server threads,
/// and the server keeps serving.
#[test]
fn idle_connections_hold_few_threads() {
    object_server::testkit::idle_connections_are_bounded::<common::UcxTests>(
        TLS,
        object_server::testkit::Mode {
            path: DataPath::Auto,
            zero_copy: None,
        },
    );
}
