//! The DAOS engine stopped (SIGSTOP) while a get is in flight: the get fails
//! with a clear, temporary error within the connector's timeout, never
//! hangs; after SIGCONT the same connector reads again.
//!
//! Needs the engine on this machine: the test finds the `daos_engine`
//! process in /proc (it must be allowed to signal it: run as the user that
//! started DAOS, root here).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use daos_connector::DaosConnector;
use proxy_core::{Connector, Payload};

fn engine_pids() -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "daos_engine")
        {
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

    let pids = engine_pids();
    assert!(!pids.is_empty(), "no daos_engine process on this machine");
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
