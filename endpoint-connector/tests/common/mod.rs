//! Test (and bench) helper: ProxyStore 1.1.0's relay and two endpoints
//! (`pip install 'proxystore[endpoints]==1.1.0'`, in a venv at
//! `$PROXYSTORE_ENDPOINT_VENV` or `~/.cache/proxystore-rs-py/venv-endpoints-1.1.0`,
//! made on first use: needs `python3 -m venv` and PyPI), started on free
//! loopback ports with a temporary `PROXYSTORE_HOME`, stopped and removed on
//! drop. The test's thread first moves into a network namespace of its own
//! ([`own_netns`]), so the relay, the endpoints and their WebRTC peering see
//! only a loopback interface of the test's.
#![allow(dead_code)]

use std::cell::Cell;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use endpoint_connector::{EndpointConnector, EndpointOptions};

const CHECK: &str = "import proxystore, aiortc, quart; assert proxystore.__version__ == '1.1.0'";

pub fn run(cmd: &mut Command, what: &str) -> String {
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
pub fn venv_bin() -> &'static PathBuf {
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

thread_local! {
    static IN_OWN_NETNS: Cell<bool> = const { Cell::new(false) };
}

/// Move the calling test's thread into a network namespace of its own:
/// `lo` and a veth pair `psep0`/`psep1` (10.213.0.1/24, 10.213.0.2/24),
/// nothing else. Everything this thread starts later (the relay, the
/// endpoints, the Python clients, the connector's sockets) is in it. An
/// endpoint's WebRTC agent (aiortc) offers a host candidate per interface
/// address except loopback, so the pair gives it addresses to peer on that
/// exist only in the test's namespace: no address outside the test carries
/// its traffic, and nothing reaches a STUN server.
/// Once per thread; the venv is made first (that needs PyPI). Needs
/// `CAP_SYS_ADMIN` (root) and `ip` (iproute2).
pub fn own_netns() {
    if IN_OWN_NETNS.with(Cell::get) {
        return;
    }
    venv_bin();
    // SAFETY: unshare(2) with CLONE_NEWNET only changes the calling
    // thread's network namespace; no memory is involved.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {} (the endpoint tests run the relay and the endpoints in a \
         network namespace of their own: run them as root)",
        std::io::Error::last_os_error()
    );
    IN_OWN_NETNS.with(|c| c.set(true));
    let ip = |args: &str| {
        run(
            Command::new("ip").args(args.split(' ')),
            &format!("`ip {args}` in the test's network namespace (iproute2)"),
        )
    };
    ip("link set lo up");
    ip("link add psep0 type veth peer name psep1");
    ip("addr add 10.213.0.1/24 dev psep0");
    ip("addr add 10.213.0.2/24 dev psep1");
    ip("link set psep0 up");
    ip("link set psep1 up");
    let links = ip("-o link show");
    let mut names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["lo", "psep0@psep1", "psep1@psep0"],
        "the test's namespace has only its own interfaces"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A relay and two endpoints, killed (and their directory removed) on drop.
pub struct Sites {
    /// The `PROXYSTORE_HOME` of the endpoints.
    pub home: PathBuf,
    relay: Child,
    /// `(uuid, port, process)` of each endpoint.
    pub endpoints: Vec<(String, u16, Option<Child>)>,
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
    pub fn start() -> Sites {
        Sites::start_n(2)
    }

    /// A relay and `n` endpoints (peered with each other when `n` is 2).
    pub fn start_n(n: usize) -> Sites {
        own_netns();
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
        for name in ["ep1", "ep2"].into_iter().take(n) {
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
        if n == 2 {
            sites.wait_peered();
        } else {
            sites.wait_up();
        }
        sites
    }

    pub fn start_endpoint(&mut self, i: usize) {
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

    pub fn kill_endpoint(&mut self, i: usize) {
        if let Some(mut c) = self.endpoints[i].2.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait until every endpoint answers its HTTP API.
    pub fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        for (uuid, port, _) in &self.endpoints {
            let url = format!("/exists?key=00000000-0000-4000-8000-000000000000&endpoint={uuid}");
            while http_status(*port, &url) != Some(200) {
                assert!(
                    Instant::now() < deadline,
                    "endpoint {uuid} did not answer within 90 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Wait until each endpoint reaches the other (an `exists` forwarded to
    /// the peer answers 200).
    pub fn wait_peered(&self) {
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

    pub fn connector(&self, i: usize, timeout_ms: u64) -> EndpointConnector {
        EndpointConnector::from_options(EndpointOptions {
            endpoints: vec![self.endpoints[i].0.clone()],
            proxystore_dir: Some(self.home.to_string_lossy().into_owned()),
            connect_timeout_ms: 2000,
            timeout_ms,
        })
        .unwrap()
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
