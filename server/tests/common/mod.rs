//! A `proxystore-server` process for a test: started on a free port of
//! 127.0.0.1 (its `LISTEN` line read), stopped with SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    /// The address of its `LISTEN` line.
    pub addr: String,
}

impl Server {
    /// Start one with `--segment-size segment --memory-limit limit`, then `args`
    /// (later options override earlier ones, `--listen` included).
    pub fn start_with(segment: &str, limit: &str, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_proxystore-server"))
            .args(["--listen", "127.0.0.1:0", "--segment-size", segment])
            .args(["--memory-limit", limit, "--exit-with-parent"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn proxystore-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .to_string();
        Server { child, addr }
    }

    /// Send `sig` to it.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}
