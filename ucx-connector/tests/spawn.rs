//! Spawn on demand: a connector with `spawn` starts `proxystore-ucx-server`
//! when none answers on this node; the server outlives the process that
//! started it; processes (here: threads with their own connectors) spawning at
//! once end with one server. Every test stops the servers it caused to start,
//! by the pid the server reports at hello.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use ucx_connector::TransportConfig;

use proxy_core::{Connector, Key, Payload};
use ucx_connector::{UcxConfig, UcxConnector};

const CHILD_ENV: &str = "PS_UCX_SPAWN_CHILD";
const TLS: &str = "shm,cma,self";
const ARGS: [&str; 4] = ["--segment-size", "8M", "--memory-limit", "64M"];

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn spawning(addr: &str) -> UcxConnector {
    UcxConnector::new(
        UcxConfig::new(addr)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(20))
            .with_spawn(ARGS),
    )
    .unwrap()
}

/// Process ids of running `proxystore-ucx-server`s listening on `addr`.
fn servers_on(addr: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_server = args
            .first()
            .is_some_and(|a| a.ends_with("proxystore-ucx-server"));
        if is_server && args.iter().any(|a| a == addr) && !is_zombie(pid) {
            v.push(pid);
        }
    }
    v
}

fn is_zombie(pid: u32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = st
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    state.is_none_or(|s| s == "Z" || s == "X")
}

/// SIGTERM the server and wait until it is gone (it is not our child).
fn stop(pid: u32, addr: &str) {
    // SAFETY: sending a signal to a process id we were told by the server.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Reap it if it is ours (directly, or as an orphan adopted by this
        // subreaper); another thread may have reaped it already.
        // SAFETY: waitpid on one pid with WNOHANG and a valid status pointer.
        unsafe {
            let mut st = 0;
            libc::waitpid(pid as libc::pid_t, &mut st, libc::WNOHANG);
        }
        if is_zombie(pid) {
            break;
        }
        assert!(Instant::now() < deadline, "server {pid} ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    while !servers_on(addr).is_empty() {
        assert!(
            Instant::now() < deadline,
            "a server still listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log of the server spawned for `addr` (see the README, "Spawn on
/// demand"): in this user's private directory.
fn log_of(addr: &str) -> std::path::PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    std::env::temp_dir()
        .join(format!("proxystore-{uid}"))
        .join(format!(
            "proxystore-ucx-server-{}.log",
            addr.replace([':', '[', ']'], "_")
        ))
}

/// Stops the server on drop, so a failing assertion leaves nothing running.
struct Guard(u32, String);

impl Drop for Guard {
    fn drop(&mut self) {
        stop(self.0, &self.1);
        let _ = std::fs::remove_file(log_of(&self.1));
    }
}

/// Child side of `spawned_server_outlives_its_spawner` (which runs it with
/// `--ignored --exact`; not a test of its own): put an object through a
/// spawning connector, print its key and the server's pid, exit.
#[test]
#[ignore = "child-process entry point"]
fn spawn_child_entry() {
    let addr = std::env::var(CHILD_ENV)
        .expect("a child-process entry point: run by spawned_server_outlives_its_spawner");
    let c = spawning(&addr);
    let k = c.put(Payload::from(vec![42u8; 100_000])).unwrap();
    let pid = c.server_pid().unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@spawned {pid} {k}").unwrap();
    out.flush().unwrap();
}

#[test]
fn spawned_server_outlives_its_spawner() {
    // Orphans of our children (the server, once its spawner exits) are
    // reparented to this process, which reaps them in `stop` (some init
    // processes in containers do not reap).
    // SAFETY: plain prctl call on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let addr = free_addr();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "spawn_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &addr)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("@@spawned ").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| {
            panic!(
                "child printed nothing ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (pid, key) = line.split_once(' ').unwrap();
    let pid: u32 = pid.parse().unwrap();
    let _guard = Guard(pid, addr.clone());
    assert!(out.status.success());
    // The spawner has exited; its server still serves the object.
    assert_eq!(servers_on(&addr), vec![pid]);
    let c = UcxConnector::new(UcxConfig::new(&addr).with_ucx_tls(TLS)).unwrap();
    assert_eq!(c.server_pid().unwrap(), pid);
    let key = Key::from_hex(key).unwrap();
    let got = c.get(&key).unwrap().expect("object outlived its producer");
    assert!(got.len() == 100_000 && got.iter().all(|&b| b == 42));
    // A spawning connector finds it running and spawns nothing.
    let s = spawning(&addr);
    assert_eq!(s.server_pid().unwrap(), pid);
    s.put(Payload::from(vec![1u8; 10])).unwrap();
    assert_eq!(servers_on(&addr), vec![pid]);
}

#[test]
fn concurrent_spawns_end_with_one_server() {
    let addr = free_addr();
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let results: Vec<(u32, Key, UcxConnector)> = (0..n)
        .map(|i| {
            let (addr, barrier) = (addr.clone(), barrier.clone());
            std::thread::spawn(move || {
                let c = spawning(&addr);
                barrier.wait();
                let k = c.put(Payload::from(vec![i as u8; 1000])).unwrap();
                (c.server_pid().unwrap(), k, c)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let pid = results[0].0;
    let _guard = Guard(pid, addr.clone());
    assert!(results.iter().all(|r| r.0 == pid), "one server for all");
    // Every object is on it, readable by every connector.
    for (i, (_, k, _)) in results.iter().enumerate() {
        for (_, _, c) in &results {
            let got = c.get(k).unwrap().unwrap();
            assert!(got.len() == 1000 && got.iter().all(|&b| b == i as u8));
        }
    }
    // The losers of the race have exited (their bind failed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers_on(&addr) != vec![pid] {
        assert!(
            Instant::now() < deadline,
            "servers on {addr}: {:?}",
            servers_on(&addr)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_spawn_nothing_is_started() {
    let addr = free_addr();
    let c = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let e = c.put(Payload::from(vec![1u8; 10])).unwrap_err();
    assert!(e.to_string().contains(&addr), "{e}");
    assert!(servers_on(&addr).is_empty());
}

/// A spawned server gets the connector's `secret` option (through its
/// environment, not its command line): a client without it is refused, one
/// with it is served; the log is this user's only.
#[test]
fn a_spawned_server_takes_the_connectors_secret() {
    use object_server::proto::{self, Request, Response};
    use object_server::testkit::access::ask;
    use std::os::unix::fs::PermissionsExt;
    const SECRET: &str = "spawn-s3cret-41d8";
    let addr = free_addr();
    let c = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(20))
            // Over TCP only: a process of the server's own user needs no
            // secret on its Unix-domain socket.
            .with_spawn(ARGS.into_iter().chain(["--no-unix-socket"]))
            .with_secret(SECRET),
    )
    .unwrap();
    let key = c.put(Payload::from(vec![5u8; 4000])).unwrap();
    let pid = c.server_pid().unwrap();
    let _guard = Guard(pid, addr.clone());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !cmdline
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()),
        "the secret is on the server's command line"
    );
    let mode = std::fs::metadata(log_of(&addr))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "log mode {mode:o}");
    // A client with nothing configured brings its user's secret: refused.
    let other = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let e = other.get(&key).unwrap_err().to_string();
    assert!(e.contains("unauthorized"), "{e}");
    let e = other
        .put(Payload::from(vec![1u8; 10]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unauthorized"), "{e}");
    // And so is one with no secret at all.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let none = Request::Hello {
        version: proto::VERSION,
        transport: "ucx".into(),
        secret: None,
    };
    assert!(matches!(ask(&mut s, &none), Response::Challenge { .. }));
    assert!(matches!(
        ask(&mut s, &Request::Stats),
        Response::Unauthorized(_)
    ));
    assert_eq!(c.server_stats().unwrap().objects, 1);
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[5u8; 4000][..]));
}
