//! A private Kafka broker for tests: `tansu` 0.6 (a Kafka-compatible broker
//! in Rust, Apache-2.0) with in-memory storage on a loopback port, killed
//! when dropped. `bash scripts/tansu.sh` installs it (`cargo install` from
//! crates.io); the binary is `$TANSU`, else `tansu` on the `PATH`, else the
//! one that script installs.

#![allow(dead_code)] // each test uses a part

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tansu binary, or a panic that says how to get one.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("tansu");
            if p.is_file() {
                return p;
            }
        }
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/proxystore-rs/tansu-0.6.0/bin/tansu");
    assert!(
        p.is_file(),
        "no Kafka broker for the Kafka stream tests: looked at $TANSU, `tansu` on the PATH and {}; \
         install it with `bash scripts/tansu.sh` (cargo install tansu 0.6.0 with in-memory storage, \
         about 10 minutes) or set TANSU to a tansu binary",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().unwrap().port()
}

/// A running broker owned by the test.
pub struct Tansu {
    child: Option<Child>,
    /// Its Kafka port on 127.0.0.1.
    pub port: u16,
    /// The port it tells clients to use (its own, or a [`Gate`]'s).
    pub advertised: u16,
    log: PathBuf,
}

impl Tansu {
    /// Start a broker on a free port.
    pub fn start() -> Tansu {
        Tansu::start_on(free_port())
    }

    /// Start a broker on `port` (again after [`Tansu::stop`]: a broker that
    /// comes back, without the records of the one before).
    pub fn start_on(port: u16) -> Tansu {
        Tansu::start_advertising(port, port)
    }

    /// Start a broker on `port` that tells clients to connect to
    /// `advertised` (a [`Gate`] in front of it).
    pub fn start_advertising(port: u16, advertised: u16) -> Tansu {
        let log = std::env::temp_dir().join(format!("ps-tansu-{}.log", uuid::Uuid::new_v4()));
        let mut t = Tansu {
            child: None,
            port,
            advertised,
            log,
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let adv = format!("tcp://127.0.0.1:{}", self.advertised);
        let out = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &adv,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", tansu_bin().display()));
        self.child = Some(child);
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tansu exited ({st}): {}", self.log_text());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "tansu did not listen on {} in 30 s: {}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `HOST:PORT` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// What the broker printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the broker (its records go with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A TCP relay on a loopback port in front of a broker, which the test can
/// take down (connections cut, new ones refused) and bring back on the same
/// port: a broker that goes away and comes back with its records.
pub struct Gate {
    /// The port clients connect to.
    pub port: u16,
    open: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    /// A gate on a free port to `127.0.0.1:target`, open.
    pub fn new(target: u16) -> Gate {
        let port = free_port();
        let open = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, d, c) = (open.clone(), done.clone(), conns.clone());
        let thread = std::thread::spawn(move || {
            let mut listener: Option<TcpListener> = None;
            while !d.load(Ordering::SeqCst) {
                if !o.load(Ordering::SeqCst) {
                    listener = None; // refused from now on
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = listener.get_or_insert_with(|| {
                    let l = TcpListener::bind(("127.0.0.1", port)).expect("rebind the gate's port");
                    l.set_nonblocking(true).unwrap();
                    l
                });
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let mut all = c.lock().unwrap();
                        all.push(client.try_clone().unwrap());
                        all.push(server.try_clone().unwrap());
                        for (mut from, mut to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(Shutdown::Both);
                                let _ = from.shutdown(Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        // Listening once the first accept loop ran.
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "gate did not listen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Gate {
            port,
            open,
            done,
            conns,
            thread: Some(thread),
        }
    }

    /// Cut every connection and refuse new ones.
    pub fn down(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // The listener is dropped within the accept loop's next turn.
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(10), "gate stays open");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Accept again, on the same port.
    pub fn up(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.down();
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
