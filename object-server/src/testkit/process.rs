//! A server program as a child process of a test.

use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Fabric;

/// A server process of fabric `F`, stopped with SIGTERM on drop.
pub struct ServerProcess<F: Fabric> {
    child: Option<Child>,
    /// `host:port` it listens on.
    pub addr: String,
    /// The fabric it was started with (UCX transports, libfabric provider,
    /// Mercury protocol: [`Fabric::server_args`]).
    pub fabric: String,
    _fabric: PhantomData<fn() -> F>,
}

impl<F: Fabric> ServerProcess<F> {
    /// Start a server over `fabric` on a free loopback port (port 0: the
    /// server reports the port it got) and wait until it listens.
    pub fn start(fabric: &str, extra: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", fabric, extra)
    }

    /// Start on a given address (used to restart on the same port).
    pub fn start_on(listen: &str, fabric: &str, extra: &[&str]) -> Self {
        Self::start_full(listen, fabric, extra, &[])
    }

    /// [`ServerProcess::start`] with `env` added to the server's environment
    /// (e.g. a fabric's own settings).
    pub fn start_with_env(fabric: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_full("127.0.0.1:0", fabric, extra, env)
    }

    fn start_full(listen: &str, fabric: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        // A server that exits before its LISTEN line (seen once in a few
        // hundred starts, cause not yet known) is started once more; its exit
        // status is printed.
        if let Some(s) = Self::start_once(listen, fabric, extra, env) {
            return s;
        }
        Self::start_once(listen, fabric, extra, env)
            .unwrap_or_else(|| panic!("{} exited twice before listening", F::SERVER_BIN))
    }

    fn start_once(
        listen: &str,
        fabric: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Option<Self> {
        let mut child = Command::new(F::SERVER_BIN)
            .envs(env.iter().copied())
            .args(["--listen", listen])
            .args(F::server_args(fabric))
            .args(["--segment-size", "16M", "--memory-limit", "256M"])
            // A crashed test must not leave its server behind.
            .arg("--exit-with-parent")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", F::SERVER_BIN));
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
            eprintln!("{} printed {line:?} and exited: {status:?}", F::SERVER_BIN);
            return None;
        };
        Some(ServerProcess {
            child: Some(child),
            addr,
            fabric: fabric.to_string(),
            _fabric: PhantomData,
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: sending a signal to our own child process, not yet
            // reaped (`child` is taken before every wait), so the pid is ours.
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

    /// How the server ended, if it has (reaped then); `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let st = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(st)
    }

    /// SIGKILL (a crash), then reap, and remove what a killed process
    /// cannot: libfabric `shm` regions (`/dev/shm/PID:UID:N`, removed by the
    /// provider's signal handlers on other signals).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let prefix = format!("{}:", c.id());
            for e in std::fs::read_dir("/dev/shm")
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl<F: Fabric> Drop for ServerProcess<F> {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

impl<F: Fabric> std::fmt::Debug for ServerProcess<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerProcess({}, {})", self.addr, self.fabric)
    }
}
