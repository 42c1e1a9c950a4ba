//! Start and stop `proxystore-ucx-server` processes for tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use ucx_connector::TransportConfig;

/// A server process, stopped with SIGTERM on drop.
pub struct ServerProcess {
    child: Option<Child>,
    /// `host:port` it listens on.
    pub addr: String,
    /// Transports it was started with.
    pub tls: String,
}

impl ServerProcess {
    /// Start a server with `--tls tls` on a free loopback port (port 0: the
    /// server reports the port it got) and wait until it listens.
    pub fn start(tls: &str, extra: &[&str]) -> ServerProcess {
        Self::start_on("127.0.0.1:0", tls, extra)
    }

    /// Start on a given address (used to restart on the same port).
    pub fn start_on(listen: &str, tls: &str, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_proxystore-ucx-server"))
            .args([
                "--listen",
                listen,
                "--tls",
                tls,
                "--segment-size",
                "16M",
                "--memory-limit",
                "256M",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn proxystore-ucx-server");
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
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .to_string();
        ServerProcess {
            child: Some(child),
            addr,
            tls: tls.to_string(),
        }
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

/// A [`UcxConnector`] that owns the server it talks to (stopped when the last
/// handle is dropped). It is the UCX connector in every respect: `kind` and
/// `config` are the inner connector's, so a rebuilt connector is a plain one.
#[derive(Debug)]
pub struct WithServer {
    /// The connector.
    pub conn: ucx_connector::UcxConnector,
    /// Its server (dropped after the connector).
    pub server: ServerProcess,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerProcess({}, {})", self.addr, self.tls)
    }
}

use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Key, Payload, Result,
};

// A wrapper: forward every method, so no default replaces the connector's own.
#[warn(clippy::missing_trait_methods)]
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
    fn key_to_string(&self, key: &Key) -> Result<String> {
        self.conn.key_to_string(key)
    }
    fn parse_key(&self, s: &str) -> Result<Key> {
        self.conn.parse_key(s)
    }
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        self.conn.wait_for(key, timeout)
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        self.conn.as_deferrable()
    }
}

/// The conformance suite's `setup` over transports `tls`: a fresh object
/// server process per case (stopped with it) and a connector to it, reading
/// the server's segments in place (`zero_copy`) or copying over `tls`.
pub fn conformance_setup(tls: &str, zero_copy: bool) -> WithServer {
    let server = ServerProcess::start(tls, &["--segment-size", "64M", "--memory-limit", "1G"]);
    let cfg = ucx_connector::UcxConfig::new(&server.addr)
        .with_ucx_tls(tls)
        .with_zero_copy(zero_copy)
        .with_timeout(std::time::Duration::from_secs(30));
    WithServer {
        conn: ucx_connector::UcxConnector::new(cfg).expect("connector"),
        server,
    }
}

/// UCX transports of the verbs tests: `PROXYSTORE_TEST_UCX_VERBS_TLS`, by
/// default `rc_verbs,ud_verbs,self` (InfiniBand, RoCE, soft-RoCE `rxe`).
pub fn verbs_tls() -> String {
    std::env::var("PROXYSTORE_TEST_UCX_VERBS_TLS")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "rc_verbs,ud_verbs,self".to_string())
}
