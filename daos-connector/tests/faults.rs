//! The DAOS engine stopped (SIGSTOP) while a get is in flight: the get fails
//! with a clear, temporary error within the connector's timeout, never
//! hangs; after SIGCONT the same connector reads again.
//!
//! Needs the engine on this machine: the test stops only the engines it is
//! connected to, found in /proc as the `daos_engine` processes that hold
//! the far end of one of this process's TCP connections (`ofi+tcp`; with
//! another provider, `PROXYSTORE_DAOS_ENGINE_PIDS` names them). It must be
//! allowed to read their file descriptors and signal them: run as the user
//! that started DAOS, root here.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use daos_connector::DaosConnector;
use proxy_core::{Connector, Payload};

/// One row of `/proc/self/net/tcp{,6}`: local and remote address (as the
/// kernel prints them), whether it is established, the socket's inode.
struct TcpRow {
    local: String,
    remote: String,
    established: bool,
    inode: u64,
}

/// The TCP sockets of this process's network namespace.
fn tcp_rows() -> Vec<TcpRow> {
    let mut rows = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            rows.push(TcpRow {
                local: f[1].to_string(),
                remote: f[2].to_string(),
                established: f[3] == "01",
                inode: f[9].parse().unwrap_or(0),
            });
        }
    }
    rows
}

/// The socket inodes process `pid` holds open (`self` for this one).
fn socket_inodes(pid: &str) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The inodes of the sockets at the far end of this process's established
/// TCP connections within this machine (one side's row in the kernel's
/// table has the other's addresses swapped).
fn peer_socket_inodes() -> HashSet<u64> {
    let rows = tcp_rows();
    let ours = socket_inodes("self");
    // The far ends of our established connections, as the peer's own rows.
    let ends: HashSet<(&str, &str)> = rows
        .iter()
        .filter(|r| r.established && ours.contains(&r.inode))
        .map(|r| (r.remote.as_str(), r.local.as_str()))
        .collect();
    rows.iter()
        .filter(|r| ends.contains(&(r.local.as_str(), r.remote.as_str())))
        .map(|r| r.inode)
        .collect()
}

/// The `daos_engine` processes this process is connected to (over TCP,
/// `ofi+tcp`): the engines that serve the test's pool, and no other engine
/// of the machine. `PROXYSTORE_DAOS_ENGINE_PIDS` (comma-separated) names
/// them instead, for a provider without TCP sockets.
fn our_engine_pids() -> Vec<u32> {
    if let Ok(v) = std::env::var("PROXYSTORE_DAOS_ENGINE_PIDS") {
        return v
            .split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("PROXYSTORE_DAOS_ENGINE_PIDS: {p:?} is not a pid"))
            })
            .collect();
    }
    let peer_inodes = peer_socket_inodes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let is_engine = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "daos_engine");
        if is_engine && !socket_inodes(&name).is_disjoint(&peer_inodes) {
            out.push(pid);
        }
    }
    out
}

fn signal(pids: &[u32], sig: &str) {
    for p in pids {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(p.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {p}");
    }
}

/// The engine finder's means, on a connection of our own: the accepted
/// socket is the far end of the connecting one.
#[test]
fn the_far_end_of_a_tcp_connection_is_found() {
    use std::os::fd::AsRawFd;
    let inode = |fd: i32| -> u64 {
        let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let l = l.to_string_lossy().into_owned();
        l.strip_prefix("socket:[")
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("fd {fd} is not a socket: {l}"))
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let before = peer_socket_inodes();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let peers = peer_socket_inodes();
    assert!(peers.contains(&inode(server.as_raw_fd())));
    assert!(peers.contains(&inode(client.as_raw_fd())));
    // The listening socket is no connection's end.
    assert!(!peers.contains(&inode(listener.as_raw_fd())));
    assert!(!before.contains(&inode(server.as_raw_fd())));
}

/// Resumes the engines however the test ends.
struct Resume(Vec<u32>);
impl Drop for Resume {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
    }
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT) whose daos_engine runs on this machine"
)]
fn engine_stopped_during_get_gives_a_temporary_error_within_the_timeout() {
    let timeout = Duration::from_secs(5);
    let c = DaosConnector::new(common::options("fault").timeout(timeout)).unwrap();
    let data = proxy_core::conformance::pattern(64 << 20, 9);
    let key = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));

    // Only the engines this process talks to: another DAOS system (or
    // another test's engine) on the machine is left alone.
    let pids = our_engine_pids();
    assert!(
        !pids.is_empty(),
        "no daos_engine process on this machine holds a TCP connection of this test \
         (the engine must run here, over ofi+tcp, and be readable in /proc; \
         or name it with PROXYSTORE_DAOS_ENGINE_PIDS)"
    );
    let c = std::sync::Arc::new(c);
    let reader = {
        let (c, key) = (c.clone(), key.clone());
        std::thread::spawn(move || {
            // Gets until one fails: the engine stops during one of them.
            let start = Instant::now();
            loop {
                let t = Instant::now();
                match c.get(&key) {
                    Ok(Some(_)) if start.elapsed() < Duration::from_secs(60) => continue,
                    other => return (other, t.elapsed()),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let stopped_at = Instant::now();
    let resume = Resume(pids.clone());
    signal(&pids, "STOP");
    let (result, took) = reader.join().unwrap();
    let since_stop = stopped_at.elapsed();
    drop(resume);
    let e = match result {
        Err(e) => e,
        Ok(v) => panic!(
            "get kept working with the engine stopped: {:?}",
            v.map(|b| b.len())
        ),
    };
    eprintln!("get failed after {took:?} ({since_stop:?} after SIGSTOP): {e}");
    assert!(e.is_temporary(), "not temporary: {e}");
    let m = e.to_string();
    assert!(m.contains("daos") && m.contains("get"), "{m}");
    // The deadline, plus slack for a loaded machine.
    assert!(
        took <= timeout + Duration::from_secs(2),
        "the get took {took:?}"
    );

    // Resumed: the same connector reads the object again.
    let back = Instant::now();
    loop {
        match c.get(&key) {
            Ok(Some(b)) => {
                assert_eq!(&b[..], &data[..]);
                break;
            }
            r if back.elapsed() > Duration::from_secs(120) => {
                panic!("no get after SIGCONT: {r:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    c.evict(&key).unwrap();
}
