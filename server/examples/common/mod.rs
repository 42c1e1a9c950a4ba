//! What the server's benchmark examples share: sizes, timing, the server
//! process, an object to get.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_server::ServerBinary;
use proxy_core::{Connector, Payload};

/// A size (`proxy_core::size`: K/M/G and KiB/MiB/GiB powers of 1024, KB/MB/GB of 1000).
pub fn parse_size(s: &str) -> usize {
    proxy_core::size::parse_len(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The first line `child` printed on stdout.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    line.trim().to_string()
}

/// Median and best.
pub fn stats(mut t: Vec<Duration>) -> (Duration, Duration) {
    t.sort();
    (t[t.len() / 2], t[0])
}

/// Put one object of `len` bytes; a closure that gets it once and returns
/// the time.
pub fn getter(
    c: &dyn Connector,
    len: usize,
) -> (proxy_core::Key, impl Fn(&dyn Connector) -> Duration + use<>) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let key = c.put(Payload::from(data)).expect("put");
    let k = key.clone();
    let get = move |c: &dyn Connector| {
        let t = Instant::now();
        let b = c.get(&k).unwrap().expect("object");
        let d = t.elapsed();
        assert_eq!(b.len(), len);
        d
    };
    (key, get)
}

/// A closure that puts one object of `len` bytes (a copy made untimed
/// before, its pages written), returns the time and evicts it (untimed).
pub fn putter(len: usize) -> impl Fn(&dyn Connector) -> Duration {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    move |c: &dyn Connector| {
        let p = Payload::from(data.clone());
        let t = Instant::now();
        let key = c.put(p).expect("put");
        let d = t.elapsed();
        c.evict(&key).expect("evict");
        d
    }
}

/// Latency below 1 MiB, bandwidth from 1 MiB.
pub fn fmt(d: Duration, len: usize) -> String {
    if len >= 1 << 20 {
        format!("{:.2} GB/s", len as f64 / d.as_secs_f64() / 1e9)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

/// A `proxystore-server` with `args`, stopped (SIGTERM) on drop.
pub struct ServerChild {
    child: Child,
    /// Its control address.
    pub addr: String,
}

impl ServerChild {
    /// Start `proxystore-server --listen 127.0.0.1:0 ARGS` and wait for its
    /// `LISTEN` line.
    pub fn start(args: &[&str]) -> ServerChild {
        Self::start_env(args, &[])
    }

    /// [`start`](Self::start) with `env` added to its environment.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> ServerChild {
        let bin = object_server::locate_server(&ServerBinary {
            name: "proxystore-server",
            env: "PROXYSTORE_SERVER",
            build: "cargo build --release -p proxystore-server --bins",
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .arg("--exit-with-parent")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start proxystore-server");
        let addr = first_line(&mut child)
            .strip_prefix("LISTEN ")
            .expect("LISTEN line")
            .to_string();
        ServerChild { child, addr }
    }
}

impl ServerChild {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
