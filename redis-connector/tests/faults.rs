//! Faults and bad input against real `redis-server`s started by the tests.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{RedisServer, free_port};
use proxy_core::{Bytes, Connector, Error, Key, Payload, Store};
use redis_connector::{RedisConnector, RedisKey};

fn store(c: RedisConnector) -> Store {
    Store::builder(format!("faults-{}", uuid::Uuid::new_v4()), c)
        .cache_bytes(0)
        .build()
        .unwrap()
}

/// Nothing listens on the port: every operation fails fast with a temporary
/// error naming the address, well within the connect timeout.
#[test]
fn redis_not_running() {
    let port = free_port();
    let c = RedisConnector::builder("127.0.0.1", port)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let s = store(c);
    let key: Key = RedisKey::new_v4().into();
    let t = Instant::now();
    let errs = [
        s.put(&Bytes::from_static(b"x")).unwrap_err(),
        s.get::<Bytes>(&key).unwrap_err(),
        s.exists(&key).unwrap_err(),
        s.evict(&key).unwrap_err(),
    ];
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    for e in &errs {
        assert!(e.is_temporary(), "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        // The Redis error is a typed source (under it, the redis crate keeps
        // the io::Error, which it reports through its own accessors).
        let failure = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<redis_connector::RedisFailure>())
            .unwrap_or_else(|| panic!("no RedisFailure source: {e:?}"));
        let re = failure.redis_error();
        assert!(re.is_io_error() && re.is_connection_refusal(), "{e:?}");
        assert!(
            failure.context().contains(&format!("127.0.0.1:{port}")),
            "{e:?}"
        );
    }
    eprintln!("not running: {}", errs[1]);
}

/// A server that accepts connections but never answers: the operation
/// timeout fires (no hang), as `Error::Timeout`.
#[test]
fn server_never_answers() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = RedisConnector::builder("127.0.0.1", port)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let key: Key = RedisKey::new_v4().into();
    for op in ["get", "put"] {
        let t = Instant::now();
        let e = match op {
            "get" => c.get(&key).unwrap_err(),
            _ => c.put(Payload::from(vec![1u8; 10])).unwrap_err(),
        };
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{op}: {:?}",
            t.elapsed()
        );
        assert!(matches!(e, Error::Timeout { .. }), "{op}: {e}");
        assert!(e.is_temporary());
    }
    drop(l);
}

/// Killed and restarted between two operations: the pooled connections are
/// dead; the next operation reconnects and succeeds, and a key lost with the
/// restart reads as `None`. While the server is down, operations fail with
/// a temporary error.
#[test]
fn restart_between_operations() {
    let mut server = RedisServer::start();
    let c = server.connector();
    let s = store(c);
    let k1 = s.put(&"before".to_string()).unwrap();
    assert_eq!(s.get::<String>(&k1).unwrap().as_deref(), Some("before"));
    assert!(s.exists(&k1).unwrap());

    server.restart();
    assert_eq!(s.get::<String>(&k1).unwrap(), None, "lost with the restart");
    assert!(!s.exists(&k1).unwrap());
    let k2 = s.put(&"after".to_string()).unwrap();
    assert_eq!(s.get::<String>(&k2).unwrap().as_deref(), Some("after"));

    server.kill();
    let t = Instant::now();
    let e = s.get::<String>(&k2).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    let e = s.put(&"down".to_string()).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));

    server.restart();
    assert_eq!(s.get::<String>(&k2).unwrap(), None);
    let k3 = s.put(&"again".to_string()).unwrap();
    assert_eq!(s.get::<String>(&k3).unwrap().as_deref(), Some("again"));
}

/// A value under our key that is not an encoded object: `Store::get` fails
/// with a decode error naming the key; the connector itself returns the bytes.
#[test]
fn corrupt_value_names_the_key() {
    let server = RedisServer::start();
    let c = server.builder().build().unwrap();
    let rk = RedisKey::new_v4();
    assert_eq!(
        server.raw(&format!("SET {} garbage", rk.redis_key())),
        "+OK"
    );
    let key: Key = rk.into();
    let s = store(c);
    let e = s.get::<Bytes>(&key).unwrap_err();
    assert!(matches!(e, Error::Decode { key: Some(_), .. }), "{e}");
    let msg = e.to_string();
    // The error names the key as Redis (and Python) know it.
    assert!(msg.contains(&rk.redis_key()), "{msg}");
    assert_eq!(
        s.connector().get(&key).unwrap().as_deref(),
        Some(&b"garbage"[..])
    );
    // A value of another Redis type (a list) is a clear, permanent error.
    let lk = RedisKey::new_v4();
    assert_eq!(server.raw(&format!("RPUSH {} a", lk.redis_key())), ":1");
    let e = s.get::<Bytes>(&lk.into()).unwrap_err();
    assert!(!e.is_temporary(), "{e}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
}

/// Wrong, missing and right passwords; the password never appears in errors.
#[test]
fn passwords() {
    let server = RedisServer::start_with(&["--requirepass", "right-pw-123"]);
    let wrong = server.builder().password("wrong-pw-456").build().unwrap();
    let key: Key = RedisKey::new_v4().into();
    for e in [
        wrong.get(&key).unwrap_err(),
        wrong.put(Payload::from(vec![1u8; 3])).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(!e.is_temporary(), "{msg}");
        assert!(msg.contains("authentication failed"), "{msg}");
        assert!(
            !msg.contains("wrong-pw-456") && !msg.contains("right-pw"),
            "{msg}"
        );
        eprintln!("wrong password: {msg}");
    }
    let none = server.builder().build().unwrap();
    let e = none.get(&key).unwrap_err();
    assert!(!e.is_temporary(), "{e}");
    assert!(e.to_string().contains("NOAUTH"), "{e}");

    let right = server
        .builder()
        .password("right-pw-123")
        .db(2)
        .build()
        .unwrap();
    let k = right.put(Payload::from(vec![7u8; 5])).unwrap();
    assert_eq!(right.get(&k).unwrap().as_deref(), Some(&[7u8; 5][..]));
    assert!(!format!("{right:?}").contains("right-pw"));
    let db0 = server.builder().password("right-pw-123").build().unwrap();
    assert_eq!(db0.get(&k).unwrap(), None, "db 2 is not db 0");

    // A store built from a configuration that holds the password works, and
    // neither its configuration nor its proxies carry the password.
    redis_connector::register();
    let cfg = proxy_core::StoreConfig::new(
        "pw-store",
        proxy_core::ConnectorConfig::new(
            "redis",
            serde_json::json!({ "host": "127.0.0.1", "port": server.port, "password": "right-pw-123" }),
        ),
    );
    let store = Store::from_config(&cfg).unwrap();
    let p = store.proxy(Bytes::from_static(b"secret-free")).unwrap();
    let wire = p.to_bytes().unwrap();
    assert!(
        !String::from_utf8_lossy(&wire).contains("right-pw"),
        "proxy carries the password"
    );
    assert!(
        !store
            .config()
            .to_toml_string()
            .unwrap()
            .contains("right-pw")
    );
    assert_eq!(
        &store.get::<Bytes>(p.key()).unwrap().unwrap()[..],
        b"secret-free"
    );
}

/// Objects over the limit are refused before anything is written.
#[test]
fn too_large_is_refused() {
    let server = RedisServer::start();
    let small = server.builder().max_object_size(1000).build().unwrap();
    assert!(small.put(Payload::from(vec![0u8; 1000])).is_ok());
    let before = server.raw("DBSIZE");
    let e = small.put(Payload::from(vec![0u8; 1001])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                size: 1001,
                limit: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        small.put_batch(vec![
            Payload::from(vec![0u8; 10]),
            Payload::from(vec![0u8; 5000])
        ]),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(server.raw("DBSIZE"), before, "nothing written");
    // The default limit is Redis' own 512 MiB (a calloc'd buffer: not touched).
    let c = server.builder().build().unwrap();
    assert_eq!(c.capabilities().max_object_size, Some(512 << 20));
    let huge = Payload::from(vec![0u8; (512 << 20) + 1]);
    assert!(matches!(c.put(huge), Err(Error::TooLarge { .. })));
    assert_eq!(server.raw("DBSIZE"), before, "nothing written");
}

/// `clear` deletes only the connector's own keys when it has a prefix, and
/// the whole database (FLUSHDB) without one; default is to keep the data.
#[test]
fn close_and_clear() {
    let server = RedisServer::start();
    let keep = server.builder().prefix("keep:").build().unwrap();
    let kept = keep.put(Payload::from(vec![1u8; 4])).unwrap();
    keep.close().unwrap();
    assert!(keep.exists(&kept).unwrap(), "clear defaults to false");

    let mine = server
        .builder()
        .prefix("mine*[x]:")
        .clear(true)
        .build()
        .unwrap();
    let keys = mine
        .put_batch((0..2500).map(|i| Payload::from(vec![i as u8; 3])).collect())
        .unwrap();
    assert!(mine.exists(&keys[2499]).unwrap());
    mine.close().unwrap();
    assert!(!mine.exists(&keys[0]).unwrap() && !mine.exists(&keys[2499]).unwrap());
    assert!(keep.exists(&kept).unwrap(), "other prefixes are untouched");

    let all = server.builder().clear(true).build().unwrap();
    all.close().unwrap();
    assert!(!keep.exists(&kept).unwrap(), "FLUSHDB without a prefix");
}

/// Many threads share one connector (its connection pools) at once.
#[test]
fn shared_by_threads() {
    let server = RedisServer::start();
    let c = server.connector();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let c = &c;
            s.spawn(move || {
                for i in 0..50u8 {
                    let v = vec![t ^ i; 2000 + i as usize];
                    let k = c.put(Payload::from(v.clone())).unwrap();
                    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&v[..]));
                    let got = c.get_batch(&[k.clone(), k.clone()]).unwrap();
                    assert_eq!(got[1].as_deref(), Some(&v[..]));
                    c.evict(&k).unwrap();
                }
            });
        }
    });
}

const CHILD_PORT_ENV: &str = "PROXYSTORE_REDIS_TEST_CHILD_PORT";

/// The password is taken from `PROXYSTORE_REDIS_PASSWORD` when none is
/// configured (as a process rebuilding the connector from a proxy does). The
/// environment is set for a child run of this test binary only.
#[test]
fn password_from_env() {
    let server = RedisServer::start_with(&["--requirepass", "env-pw-789"]);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "password_from_env_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PORT_ENV, server.port.to_string())
        .env(redis_connector::PASSWORD_ENV, "env-pw-789")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("@@child-ok"), "{stdout}");
}

/// Child side of [`password_from_env`], which runs it with `--ignored
/// --exact`; not a test of its own.
#[test]
#[ignore = "child-process entry point"]
fn password_from_env_child() {
    let port = std::env::var(CHILD_PORT_ENV)
        .expect("a child-process entry point: run by password_from_env");
    let c = RedisConnector::new("127.0.0.1", port.parse().unwrap()).unwrap();
    assert!(!format!("{c:?} {:?} {:?}", c.options(), c.config()).contains("env-pw"));
    let k = c.put(Payload::from(vec![9u8; 9])).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&[9u8; 9][..]));
    println!("@@child-ok");
}

/// Large values are received into recycled buffers: a reused buffer never
/// leaks an earlier value's bytes, and buffers still held stay intact.
#[test]
fn large_values_recycled_buffers() {
    let server = RedisServer::start();
    let c = server.connector();
    let a = vec![1u8; 3 << 20];
    let b: Vec<u8> = (0..(2 << 20) + 12345).map(|i| (i % 253) as u8).collect();
    let ka = c.put(Payload::from(a.clone())).unwrap();
    let kb = c.put(Payload::from(b.clone())).unwrap();
    let got_a = c.get(&ka).unwrap().unwrap();
    assert_eq!(got_a, a);
    drop(got_a); // back to the pool
    let got_b = c.get(&kb).unwrap().unwrap(); // reuses a's buffer
    assert_eq!(got_b.len(), b.len());
    assert_eq!(got_b, b);
    let held = c.get(&ka).unwrap().unwrap(); // b's still held: a new buffer
    assert_eq!(held, a);
    assert_eq!(got_b, b, "held buffer untouched");
    let both = c.get_batch(&[kb.clone(), ka.clone(), kb]).unwrap();
    assert_eq!(both[0].as_deref(), Some(&b[..]));
    assert_eq!(both[1].as_deref(), Some(&a[..]));
    assert_eq!(both[2].as_deref(), Some(&b[..]));
    // A slice outlives the Bytes it came from.
    let tail = held.slice(held.len() - 10..);
    drop(held);
    assert_eq!(&tail[..], &[1u8; 10]);
}

/// An ACL user (Redis 6+): user name and password on both connection kinds.
#[test]
fn acl_user() {
    let server =
        RedisServer::start_with(&["--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"]);
    let alice = server
        .builder()
        .username("alice")
        .password("alice-pw")
        .build()
        .unwrap();
    let k = alice.put(Payload::from(vec![5u8; 300_000])).unwrap();
    assert_eq!(alice.get(&k).unwrap().as_deref(), Some(&[5u8; 300_000][..]));
    assert!(alice.exists(&k).unwrap());
    let wrong = server
        .builder()
        .username("alice")
        .password("nope")
        .build()
        .unwrap();
    let e = wrong.get(&k).unwrap_err();
    assert!(e.to_string().contains("authentication failed"), "{e}");
    assert!(!e.is_temporary());
    // The user name is part of the configuration, the password is not.
    let cfg = alice.config();
    assert_eq!(cfg.options["username"], "alice");
    assert!(!format!("{cfg:?}").contains("alice-pw"));
}

/// Connections are reused: many operations open only a couple of connections
/// (one per pool), not one per operation.
#[test]
fn connections_are_reused() {
    let server = RedisServer::start();
    let total = || -> i64 {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
            .unwrap()
            .get_connection()
            .unwrap();
        let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = total();
    let c = server.connector();
    for i in 0..200u8 {
        let k = c.put(Payload::from(vec![i; 100])).unwrap();
        assert!(c.exists(&k).unwrap());
        assert_eq!(c.get(&k).unwrap().as_deref(), Some(&[i; 100][..]));
        c.evict(&k).unwrap();
    }
    // +1 for the INFO connection of `total` itself.
    let opened = total() - before - 1;
    assert!(opened <= 2, "{opened} connections for 800 operations");
}
