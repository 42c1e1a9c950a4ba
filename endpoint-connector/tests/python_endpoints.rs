//! Rust and Python processes exchanging objects through two ProxyStore
//! endpoints peered over WebRTC through a relay server, all of ProxyStore
//! 1.1.0 (`pip install 'proxystore[endpoints]==1.1.0'`, in a venv at
//! `$PROXYSTORE_ENDPOINT_VENV` or `~/.cache/proxystore-rs-py/venv-endpoints-1.1.0`,
//! made on first use: needs `python3 -m venv` and PyPI). The test starts the
//! relay and the endpoints on free loopback ports with a temporary
//! `PROXYSTORE_HOME`, and stops them and removes the directory on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use endpoint_connector::{EndpointConnector, EndpointKey, EndpointOptions};
use proxy_core::{Connector, Key, Payload};

const CHECK: &str = "import proxystore, aiortc, quart; assert proxystore.__version__ == '1.1.0'";

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The venv's `bin/` directory, created on first use (built under a
/// temporary name and renamed, so concurrent test processes never see half
/// of one).
fn venv_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::var("PROXYSTORE_ENDPOINT_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
                PathBuf::from(home).join(".cache/proxystore-rs-py/venv-endpoints-1.1.0")
            });
        let ready = |d: &Path| {
            Command::new(d.join("bin/python"))
                .args(["-c", CHECK])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ready(&dir) {
            let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
            eprintln!(
                "creating the ProxyStore endpoints venv at {}",
                dir.display()
            );
            run(
                Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&tmp),
                "`python3 -m venv` (Debian: apt-get install -y python3-venv)",
            );
            run(
                Command::new(tmp.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .arg("proxystore[endpoints]==1.1.0"),
                "pip install 'proxystore[endpoints]==1.1.0' (needs PyPI)",
            );
            // A venv's scripts name their interpreter by path: rebuild the
            // venv in place after the rename (packages stay).
            let _ = std::fs::rename(&tmp, &dir);
            let _ = std::fs::remove_dir_all(&tmp);
            run(
                Command::new("python3")
                    .args(["-m", "venv", "--upgrade"])
                    .arg(&dir),
                "python3 -m venv --upgrade",
            );
            run(
                Command::new(dir.join("bin/python"))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(["--force-reinstall", "--no-deps", "proxystore==1.1.0"]),
                "reinstalling proxystore's scripts",
            );
            assert!(
                ready(&dir),
                "the venv at {} does not import proxystore 1.1.0",
                dir.display()
            );
        }
        dir.join("bin")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A relay and two endpoints, killed (and their directory removed) on drop.
struct Sites {
    home: PathBuf,
    relay: Child,
    endpoints: Vec<(String, u16, Option<Child>)>,
}

impl Drop for Sites {
    fn drop(&mut self) {
        for (_, _, c) in &mut self.endpoints {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = self.relay.kill();
        let _ = self.relay.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

impl Sites {
    fn start() -> Sites {
        let bin = venv_bin();
        let home =
            std::env::temp_dir().join(format!("proxystore-ep-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&home).unwrap();
        let relay_port = free_port();
        let relay = Command::new(bin.join("proxystore-relay"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &relay_port.to_string(),
                "--log-level",
                "warning",
            ])
            .arg("--log-dir")
            .arg(home.join("relay-log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proxystore-relay");
        let mut sites = Sites {
            home,
            relay,
            endpoints: Vec::new(),
        };
        for name in ["ep1", "ep2"] {
            let port = free_port();
            run(
                Command::new(bin.join("proxystore-endpoint"))
                    .env("PROXYSTORE_HOME", &sites.home)
                    .args([
                        "configure",
                        name,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                    ])
                    .args([
                        "--relay-address",
                        &format!("ws://127.0.0.1:{relay_port}"),
                        "--no-relay-auth",
                    ]),
                "proxystore-endpoint configure",
            );
            let cfg = std::fs::read_to_string(sites.home.join(name).join("config.toml")).unwrap();
            let uuid = cfg
                .lines()
                .find_map(|l| l.strip_prefix("uuid = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("uuid in the endpoint's config.toml")
                .to_string();
            sites.endpoints.push((uuid, port, None));
            sites.start_endpoint(sites.endpoints.len() - 1);
        }
        sites.wait_peered();
        sites
    }

    fn start_endpoint(&mut self, i: usize) {
        let name = format!("ep{}", i + 1);
        let child = Command::new(venv_bin().join("proxystore-endpoint"))
            .env("PROXYSTORE_HOME", &self.home)
            .args(["start", &name, "--no-detach"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proxystore-endpoint");
        self.endpoints[i].2 = Some(child);
    }

    fn kill_endpoint(&mut self, i: usize) {
        if let Some(mut c) = self.endpoints[i].2.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait until each endpoint reaches the other (an `exists` forwarded to
    /// the peer answers 200).
    fn wait_peered(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        for (i, (_, port, _)) in self.endpoints.iter().enumerate() {
            let other = &self.endpoints[1 - i].0;
            loop {
                let url =
                    format!("/exists?key=00000000-0000-4000-8000-000000000000&endpoint={other}");
                let ok = http_status(*port, &url) == Some(200);
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "endpoints did not peer within 90 s"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn connector(&self, i: usize, timeout_ms: u64) -> EndpointConnector {
        EndpointConnector::from_options(EndpointOptions {
            endpoints: vec![self.endpoints[i].0.clone()],
            proxystore_dir: Some(self.home.to_string_lossy().into_owned()),
            connect_timeout_ms: 2000,
            timeout_ms,
        })
        .unwrap()
    }

    /// Run the Python side against endpoint `i`.
    fn python(&self, i: usize, args: &[&str]) -> String {
        run(
            Command::new(venv_bin().join("python"))
                .args(["-c", PY, &self.endpoints[i].0, &self.home.to_string_lossy()])
                .args(args),
            "the Python EndpointConnector",
        )
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Object `seed` of `len` bytes (period 251; Python makes the same).
fn data(seed: usize, len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..251)
        .map(|i| ((i * 7 + seed * 13) % 251) as u8)
        .collect();
    block.iter().copied().cycle().take(len).collect()
}

const SIZES: [usize; 5] = [1, 1000, 1_000_000, 10_000_000, 100_000_000];

/// `python -c PY ENDPOINT_UUID HOME put` stores objects 0..5 of SIZES and
/// prints `object_id endpoint_id` per line; `... get OID EID SEED SIZE ...`
/// reads and checks each, printing `ok`.
const PY: &str = r#"
import sys
from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
ep, home, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = EndpointConnector([ep], proxystore_dir=home)
def data(seed, n):
    block = bytes(((i * 7 + seed * 13) % 251) for i in range(251))
    return (block * (n // 251 + 1))[:n]
if mode == 'put':
    for seed, n in enumerate([1, 1000, 1_000_000, 10_000_000, 100_000_000]):
        k = c.put(data(seed, n))
        print(k.object_id, k.endpoint_id)
else:
    a = sys.argv[4:]
    for i in range(0, len(a), 4):
        got = c.get(EndpointKey(a[i], a[i + 1]))
        want = data(int(a[i + 2]), int(a[i + 3]))
        assert got == want, (a[i], None if got is None else len(got), len(want))
    print('ok')
c.close()
"#;

/// Rust puts at ep1, Python gets through ep2; Python puts at ep2, Rust gets
/// through ep1: 1 B .. 100 MB, every byte checked.
#[test]
fn rust_and_python_through_two_endpoints() {
    let sites = Sites::start();
    let c = sites.connector(0, 60_000);
    let mut args = Vec::new();
    for (seed, &n) in SIZES.iter().enumerate() {
        let k = EndpointKey::from_key(&c.put(Payload::from(data(seed, n))).unwrap()).unwrap();
        args.extend([
            k.object_id_str(),
            k.endpoint_id_str().unwrap(),
            seed.to_string(),
            n.to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut all = vec!["get"];
    all.extend(args);
    assert_eq!(sites.python(1, &all).trim(), "ok", "Rust -> Python");

    let out = sites.python(1, &["put"]);
    let keys: Vec<Key> = out
        .lines()
        .map(|l| {
            let (o, e) = l.split_once(' ').expect("object_id endpoint_id");
            EndpointKey::from_strs(o, Some(e)).unwrap().into()
        })
        .collect();
    assert_eq!(keys.len(), SIZES.len());
    for (seed, (k, &n)) in keys.iter().zip(SIZES.iter()).enumerate() {
        assert!(c.exists(k).unwrap());
        let got = c.get(k).unwrap().expect("Python's object through ep1");
        assert!(
            got == data(seed, n),
            "object {seed} of {n} bytes: other bytes"
        );
    }
    c.evict(&keys[0]).unwrap();
    assert!(!c.exists(&keys[0]).unwrap());
    assert_eq!(c.get(&keys[0]).unwrap(), None);
}

/// The remote endpoint killed: a get of its objects fails with a temporary
/// error, at the latest at the connector's timeout (the local endpoint itself
/// waits for the lost peer longer than that). The local endpoint killed:
/// clear temporary errors naming it, at once. Both restarted (empty: they
/// kept their objects in memory): they peer again, the same connectors work
/// again and objects flow both ways.
#[test]
fn endpoint_killed_and_restarted() {
    let mut sites = Sites::start();
    let c = sites.connector(0, 8000);
    let remote = sites.connector(1, 8000);
    let k = remote.put(Payload::from(data(1, 5000))).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap(), data(1, 5000));

    sites.kill_endpoint(1);
    let t = Instant::now();
    let e = c.get(&k).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    eprintln!("remote endpoint down: {e} (after {:?})", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());

    sites.kill_endpoint(0);
    let t = Instant::now();
    let e = c.put(Payload::from(data(3, 10))).unwrap_err();
    assert!(
        e.is_temporary() && t.elapsed() < Duration::from_secs(3),
        "{e}"
    );
    assert!(e.to_string().contains(&sites.endpoints[0].0), "{e}");
    eprintln!("local endpoint down: {e}");

    sites.start_endpoint(0);
    sites.start_endpoint(1);
    let t = Instant::now();
    sites.wait_peered();
    eprintln!("peered again {:?} after the restart", t.elapsed());
    assert_eq!(
        c.get(&k).unwrap(),
        None,
        "the restarted endpoint starts empty"
    );
    let k2 = remote.put(Payload::from(data(2, 70_000))).unwrap();
    assert_eq!(c.get(&k2).unwrap().unwrap(), data(2, 70_000));
    let k3 = c.put(Payload::from(data(3, 10))).unwrap();
    assert_eq!(remote.get(&k3).unwrap().unwrap(), data(3, 10));
}
