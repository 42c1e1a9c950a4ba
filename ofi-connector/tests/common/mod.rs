//! Start and stop `proxystore-ofi-server` processes for tests.
#![allow(dead_code)]

use ofi_connector::TransportConfig;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process, stopped with SIGTERM on drop.
pub struct ServerProcess {
    child: Option<Child>,
    /// `host:port` it listens on.
    pub addr: String,
    /// Transports it was started with.
    pub provider: String,
}

impl ServerProcess {
    /// Start a server with `--provider provider` on a free loopback port (port 0: the
    /// server reports the port it got) and wait until it listens.
    pub fn start(provider: &str, extra: &[&str]) -> ServerProcess {
        Self::start_on("127.0.0.1:0", provider, extra)
    }

    /// Start on a given address (used to restart on the same port).
    pub fn start_on(listen: &str, provider: &str, extra: &[&str]) -> ServerProcess {
        // A server that exits before its LISTEN line (seen once in a few
        // hundred starts, cause not yet known) is started once more; its exit
        // status is printed.
        if let Some(s) = Self::start_once(listen, provider, extra) {
            return s;
        }
        Self::start_once(listen, provider, extra)
            .unwrap_or_else(|| panic!("proxystore-ofi-server exited twice before listening"))
    }

    fn start_once(listen: &str, provider: &str, extra: &[&str]) -> Option<ServerProcess> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_proxystore-ofi-server"))
            .args([
                "--listen",
                listen,
                "--provider",
                provider,
                "--segment-size",
                "16M",
                "--memory-limit",
                "256M",
                // A crashed test must not leave its server behind.
                "--exit-with-parent",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn proxystore-ofi-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            // Generous: on a machine loaded by other builds a server's start
            // (provider discovery, segment pre-faulting) has taken over 30 s.
            .recv_timeout(Duration::from_secs(120))
            .expect("server did not report its address in 120 s");
        let Some(addr) = line.trim().strip_prefix("LISTEN ").map(str::to_string) else {
            let status = child.wait();
            eprintln!("proxystore-ofi-server printed {line:?} and exited: {status:?}");
            return None;
        };
        Some(ServerProcess {
            child: Some(child),
            addr,
            provider: provider.to_string(),
        })
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(c.id() as libc::pid_t, sig) };
        }
    }

    /// SIGTERM, then wait (SIGKILL after 10 s).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        let mut child = self.child.take()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server ignored SIGTERM for 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the server.
    /// Returns once the kernel reports the new state (signals are asynchronous).
    pub fn freeze(&self, on: bool) {
        self.signal(if on { libc::SIGSTOP } else { libc::SIGCONT });
        let Some(c) = &self.child else { return };
        let stat = format!("/proc/{}/stat", c.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Field 3 of /proc/PID/stat (after "PID (comm)") is the state; T = stopped.
            let st = std::fs::read_to_string(&stat).unwrap_or_default();
            let state = st
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            if (state == Some("T")) == on {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not change state ({st})"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILL (a crash), then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

/// A [`OfiConnector`] that owns the server it talks to (stopped when the last
/// handle is dropped). It is the libfabric connector in every respect: `kind` and
/// `config` are the inner connector's, so a rebuilt connector is a plain one.
#[derive(Debug)]
pub struct WithServer {
    /// The connector.
    pub conn: ofi_connector::OfiConnector,
    /// Its server (dropped after the connector).
    pub server: ServerProcess,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerProcess({}, {})", self.addr, self.provider)
    }
}

use proxy_core::{Bytes, Capabilities, Connector, ConnectorConfig, Key, Payload, Result};

impl Connector for WithServer {
    fn kind(&self) -> &'static str {
        self.conn.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.conn.capabilities()
    }
    fn put(&self, data: Payload) -> Result<Key> {
        self.conn.put(data)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        self.conn.put_batch(data)
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.conn.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.conn.get_batch(keys)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.conn.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<()> {
        self.conn.evict(key)
    }
    fn close(&self) -> Result<()> {
        self.conn.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.conn.config()
    }
}

/// The conformance suite's `setup` over transports `provider`: a fresh object
/// server process per case (stopped with it) and a connector to it, reading
/// the server's segments in place (`zero_copy`) or copying over `provider`.
pub fn conformance_setup(provider: &str, zero_copy: bool) -> WithServer {
    let server = ServerProcess::start(provider, &["--segment-size", "64M", "--memory-limit", "1G"]);
    let cfg = ofi_connector::OfiConfig::new(&server.addr)
        .with_provider(provider)
        .with_zero_copy(zero_copy)
        .with_timeout(std::time::Duration::from_secs(30));
    WithServer {
        conn: ofi_connector::OfiConnector::new(cfg).expect("connector"),
        server,
    }
}

/// libfabric provider of the verbs tests: `PROXYSTORE_TEST_OFI_VERBS_PROVIDER`,
/// by default `verbs;ofi_rxm` (InfiniBand, RoCE, soft-RoCE `rxe`).
pub fn verbs_provider() -> String {
    std::env::var("PROXYSTORE_TEST_OFI_VERBS_PROVIDER")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "verbs;ofi_rxm".to_string())
}
