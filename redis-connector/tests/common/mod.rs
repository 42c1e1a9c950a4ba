//! Test (and bench) helper: a private `redis-server` on a free loopback port.
//!
//! The server runs with persistence off (`--save "" --appendonly no`), bound
//! to 127.0.0.1, and is killed by PID when the [`RedisServer`] is dropped. A
//! small watchdog shell (`sh`, reading its stdin) also kills it if this
//! process dies without dropping the value (a `static`, a panic in a
//! destructor, SIGKILL): its stdin is a pipe that closes with this process.
#![allow(dead_code)]

pub mod cluster;
pub mod python;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_connector::{RedisConnector, RedisConnectorBuilder};

/// A running `redis-server` owned by the test.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    extra: Vec<String>,
    dir: PathBuf,
    server: Option<Child>,
    watchdog: Option<Child>,
}

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().unwrap().port()
}

fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

impl RedisServer {
    /// Start a server with default options.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Start a server with extra command-line options (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_on(free_port, extra)
    }

    /// Start a server on a port `pick` chooses, with extra options.
    pub fn start_on(pick: fn() -> u16, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "proxystore-redis-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).expect("create redis-server working directory");
        let mut last = String::new();
        for _ in 0..5 {
            let mut s = RedisServer {
                port: pick(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                dir: dir.clone(),
                server: None,
                watchdog: None,
            };
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let bin = redis_server_bin();
        let mut child = Command::new(&bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--dir",
                self.dir.to_str().unwrap(),
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run `{bin}` ({e}): install it (Debian: apt-get install -y redis-server redis-tools) or set REDIS_SERVER"
                )
            })?;
        let pid = child.id();
        let watchdog = Command::new("sh")
            .args(["-c", &format!("read _x; kill -9 {pid} 2>/dev/null")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
        self.watchdog = Some(watchdog);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                self.stop_watchdog();
                return Err(format!(
                    "redis-server on port {} exited with {status}: {err}",
                    self.port
                ));
            }
            if ping(self.port) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.stop_watchdog();
                return Err(format!(
                    "redis-server on port {} did not answer within 10 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.server = Some(child);
        Ok(())
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|c| c.id())
    }

    /// Kill the server (SIGKILL by PID); its data is lost.
    pub fn kill(&mut self) {
        self.stop_watchdog();
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the server again on the same port (after [`RedisServer::kill`]),
    /// empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freeze the server (SIGSTOP) until the returned value is dropped
    /// (SIGCONT), also when the test panics.
    pub fn freeze(&self) -> Frozen {
        let pid = self.pid().expect("a running server");
        signal("-STOP", pid);
        Frozen(pid)
    }

    /// A connector builder for this server.
    pub fn builder(&self) -> RedisConnectorBuilder {
        RedisConnector::builder("127.0.0.1", self.port)
    }

    /// A connector with default options and a fresh key prefix.
    pub fn connector(&self) -> RedisConnector {
        self.builder()
            .prefix(format!("test-{}:", uuid::Uuid::new_v4()))
            .build()
            .unwrap()
    }

    /// Run a raw command (inline protocol) and return the first reply line.
    pub fn raw(&self, cmd: &str) -> String {
        raw_command(self.port, cmd).unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server frozen by [`RedisServer::freeze`]; thawed on drop.
#[must_use = "the server is thawed when this is dropped"]
pub struct Frozen(u32);

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let st = Command::new("kill").args([sig, &pid.to_string()]).status();
    assert!(st.is_ok_and(|s| s.success()), "kill {sig} {pid}");
}

fn raw_command(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    Ok(line.lines().next().unwrap_or_default().to_string())
}

fn ping(port: u16) -> bool {
    raw_command(port, "PING").is_ok_and(|l| l.starts_with('+') || l.starts_with('-'))
}
