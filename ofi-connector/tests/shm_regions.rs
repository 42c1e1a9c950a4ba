//! The `shm` provider's regions (`/dev/shm/PID:UID:N`) do not outlive the
//! process: one that exits with its connector still open (a CLI call, a task
//! that returns) leaves none behind, and one whose PID matches a dead
//! process's leftover region still opens its endpoint.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::ServerProcess;
use object_server::testkit::pattern;
use ofi_connector::{OfiConfig, OfiConnector, TransportConfig};
use proxy_core::{Connector, Key, Payload};

const CHILD_ENV: &str = "PROXYSTORE_SHM_REGIONS_CHILD";

/// Regions of process `pid` in /dev/shm.
fn regions_of(pid: u32) -> Vec<String> {
    // SAFETY: getuid has no preconditions.
    let prefix = format!("{pid}:{}:", unsafe { libc::getuid() });
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Run by `a_process_leaves_no_region`: leave a region under this PID as a
/// dead process with the same PID would have, get one object over `shm`
/// (zero copy off: a one-sided read through this process's own endpoint),
/// report its PID and regions and exit without closing anything.
#[test]
#[ignore = "child-process entry point"]
fn exiting_child_entry() {
    let spec = std::env::var(CHILD_ENV).expect("run by a_process_leaves_no_region");
    let (addr, key) = spec.split_once(' ').unwrap();
    let pid = std::process::id();
    // SAFETY: getuid has no preconditions.
    let stale = format!("/dev/shm/{pid}:{}:0", unsafe { libc::getuid() });
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    println!("@@pid {pid}");
    let c = OfiConnector::new(
        OfiConfig::new(addr)
            .with_provider("shm")
            .with_zero_copy(false)
            .with_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let got = c.get(&Key::from_hex(key).unwrap()).unwrap().unwrap();
    assert_eq!(got.len(), 200_000);
    println!("@@regions {}", regions_of(std::process::id()).len());
    std::mem::forget(c);
    std::process::exit(0);
}

#[test]
fn a_process_leaves_no_region() {
    let server = ServerProcess::start("shm", &[]);
    let c = OfiConnector::new(OfiConfig::new(&server.addr).with_provider("shm")).unwrap();
    let key = c.put(Payload::from(pattern(200_000, 3))).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "exiting_child_entry", "--nocapture"])
        .env(CHILD_ENV, format!("{} {key}", server.addr))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child: {text}");
    // The child had its endpoint's region while it ran...
    let line = text
        .lines()
        .find(|l| l.starts_with("@@regions"))
        .expect("child's report");
    let had: usize = line["@@regions ".len()..].trim().parse().unwrap();
    assert!(had >= 1, "the child had no shm region: {text}");
    // ... and none is left after it exited (nor the stale one).
    let pid = out_pid(&text);
    assert_eq!(
        regions_of(pid),
        Vec::<String>::new(),
        "the exited child left shm regions"
    );
}

/// The child prints its PID in the `@@pid` line.
fn out_pid(text: &str) -> u32 {
    text.lines()
        .find_map(|l| l.strip_prefix("@@pid "))
        .expect("child's pid line")
        .trim()
        .parse()
        .unwrap()
}
