//! The `proxystore` binary end to end on a file store.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ps(args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proxystore"))
        .args(args)
        .env_remove("PROXYSTORE_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool may exit (e.g. on a usage error) before reading its input.
    let _ = c.stdin.take().unwrap().write_all(stdin);
    c.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

#[test]
fn put_get_exists_evict_with_exit_codes() {
    let dir = std::env::temp_dir().join(format!("proxystore-cli-test-{}", std::process::id()));
    let url = format!("file://{}", dir.display());
    let put = ps(&["--store", &url, "put"], b"hello\x00world");
    assert!(put.status.success(), "{}", text(&put.stderr));
    let key = text(&put.stdout);
    assert_eq!(key.len(), 36, "a UUID, as the Python FileKey: {key}");
    assert!(dir.join(&key).exists() && dir.join(format!("{key}.ready")).exists());

    let get = ps(&["--store", &url, "get", &key], b"");
    assert_eq!(get.stdout, b"hello\x00world");
    let raw = ps(&["--store", &url, "get", "--raw", &key], b"");
    let mut want = b"BS".to_vec();
    want.extend_from_slice(&[b' '; 61]);
    want.extend_from_slice(b"\nhello\x00world");
    assert_eq!(raw.stdout, want);
    assert_eq!(
        text(&ps(&["--store", &url, "exists", &key], b"").stdout),
        "true"
    );

    let s = ps(&["--store", &url, "put", "--str"], "héllo".as_bytes());
    let skey = text(&s.stdout);
    assert_eq!(
        ps(&["--store", &url, "get", "--raw", &skey], b"").stdout,
        "US\nhéllo".as_bytes()
    );
    assert_eq!(
        ps(&["--store", &url, "put", "--str"], b"\xff")
            .status
            .code(),
        Some(2),
        "non-UTF-8 --str"
    );

    let evict = ps(&["--store", &url, "evict", &key], b"");
    assert!(evict.status.success());
    let ex = ps(&["--store", &url, "exists", &key], b"");
    assert_eq!(
        (text(&ex.stdout).as_str(), ex.status.code()),
        ("false", Some(1))
    );
    let get = ps(&["--store", &url, "get", &key], b"");
    assert_eq!(get.status.code(), Some(1));
    assert!(text(&get.stderr).contains("not stored"));

    let proxy = ps(&["--store", &url, "put", "--print", "proxy"], b"x");
    let hex = text(&proxy.stdout);
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let p: proxy_core::Proxy<proxy_core::Bytes> = proxy_core::Proxy::from_bytes(&bytes).unwrap();
    assert_eq!(&p.resolve().unwrap()[..], b"x");
    // `resolve`: the proxy alone (no --store), as text and from stdin.
    let r = ps(&["resolve", &hex], b"");
    assert_eq!((r.stdout.as_slice(), r.status.code()), (&b"x"[..], Some(0)));
    let r = ps(&["resolve", "-"], hex.as_bytes());
    assert_eq!(r.stdout, b"x");
    let r = ps(&["resolve", "zz"], b"");
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));

    let cfg = ps(&["--store", &url, "config"], b"");
    let toml_path = dir.join("store.toml");
    std::fs::write(&toml_path, &cfg.stdout).unwrap();
    let via_cfg = ps(
        &["--config", toml_path.to_str().unwrap(), "get", &skey],
        b"",
    );
    assert_eq!(via_cfg.stdout, "héllo".as_bytes());
    std::fs::remove_dir_all(dir).ok();
}

/// `watch`: repeated gets in one process, one line each; other bytes than
/// the expected file's are reported (`WRONG`, exit 3), a missing object is
/// `none`.
#[test]
fn watch_reports_each_get() {
    let dir = std::env::temp_dir().join(format!("proxystore-cli-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("file://{}", dir.join("store").display());
    let proxy = text(&ps(&["--store", &url, "put", "--print", "proxy"], b"abc").stdout);
    let gone = text(&ps(&["--store", &url, "put", "--print", "proxy"], b"xyz").stdout);
    let key = |p: &str| {
        let b: Vec<u8> = (0..p.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&p[i..i + 2], 16).unwrap())
            .collect();
        proxy_core::Proxy::<proxy_core::Bytes>::from_bytes(&b)
            .unwrap()
            .key()
            .to_string()
    };
    assert!(
        ps(&["--store", &url, "evict", &key(&gone)], b"")
            .status
            .success()
    );
    std::fs::write(dir.join("right"), b"abc").unwrap();
    std::fs::write(dir.join("wrong"), b"abd").unwrap();
    let list = dir.join("list");
    let d = |f: &str| dir.join(f).display().to_string();
    std::fs::write(&list, format!("a {proxy} {}\ng {gone}\n", d("right"))).unwrap();
    let w = ps(
        &["watch", "--every-ms", "50", "--for-s", "0.3", &d("list")],
        b"",
    );
    let out = text(&w.stdout);
    assert_eq!(w.status.code(), Some(0), "{out} {}", text(&w.stderr));
    assert!(
        out.lines().filter(|l| l.contains(" a ok ")).count() >= 3,
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains(" g none ")), "{out}");
    std::fs::write(&list, format!("a {proxy} {}\n", d("wrong"))).unwrap();
    let w = ps(
        &["watch", "--every-ms", "50", "--for-s", "0.1", &d("list")],
        b"",
    );
    assert_eq!(w.status.code(), Some(3), "{}", text(&w.stdout));
    assert!(text(&w.stdout).contains(" a WRONG "));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn errors_are_clear_and_exit_2() {
    for (args, want) in [
        (vec!["get", "x"], "no store given"),
        (
            vec!["--store", "gopher://x", "get", "x"],
            "unsupported store URL scheme",
        ),
        (
            vec!["--store", "gopher://x", "get", "x"],
            "registered here: daos, endpoint, file, margo, ofi, redis, redis+cluster, ucx",
        ),
        (vec!["--store", "file://rel", "get", "x"], "absolute path"),
        (
            vec![
                "--store",
                "file:///tmp/proxystore-cli-bad",
                "get",
                "not-a-uuid",
            ],
            "not a UUID",
        ),
        (
            vec!["--config", "/nonexistent.toml", "get", "x"],
            "/nonexistent.toml",
        ),
        (vec!["--store", "ucx://127.0.0.1:1", "put"], "ucx"),
    ] {
        let o = ps(&args, b"data");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(want),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn help_on_every_subcommand() {
    for sub in ["put", "get", "exists", "evict", "config"] {
        let o = ps(&[sub, "--help"], b"");
        assert!(o.status.success(), "{sub}");
        assert!(text(&o.stdout).contains("Usage: proxystore"), "{sub}");
    }
}

/// A real redis-server on a free loopback port, killed on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server not found: apt-get install redis-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Redis { child, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_store_keys_are_python_redis_keys() {
    let r = Redis::start();
    let url = format!("redis://127.0.0.1:{}/0", r.port);
    let put = ps(&["--store", &url, "put"], b"to python");
    assert!(put.status.success(), "{}", text(&put.stderr));
    let key = text(&put.stdout);
    assert_eq!(key.len(), 36, "RedisKey.redis_key is a UUID: {key}");
    assert_eq!(
        ps(&["--store", &url, "get", &key], b"").stdout,
        b"to python"
    );
    assert!(ps(&["--store", &url, "evict", &key], b"").status.success());
    assert_eq!(
        ps(&["--store", &url, "exists", &key], b"").status.code(),
        Some(1)
    );
    // The printed configuration never holds a password given in the URL.
    let cfg = text(
        &ps(
            &[
                "--store",
                &format!("redis://:hunter2@127.0.0.1:{}", r.port),
                "config",
            ],
            b"",
        )
        .stdout,
    );
    assert!(!cfg.contains("hunter2") && cfg.contains("redis"), "{cfg}");
    // A server that is not there: a clear error, exit 2.
    drop(r);
    let o = ps(&["--store", &url, "get", &key], b"");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}
