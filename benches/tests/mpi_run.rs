//! The MPI benchmark under a real `mpiexec` (MPICH): a normal quick run, and a
//! run where a consumer rank fails, which must end promptly with a clear
//! message, a non-zero exit, and the partial results written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mpiexec() -> Option<&'static str> {
    ["mpiexec.mpich", "mpiexec"].into_iter().find(|m| {
        Command::new(m)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// Run with a deadline: a hang is a failure, not a stuck test.
fn run(args: &[&str], deadline: Duration) -> Output {
    let mpiexec =
        mpiexec().expect("mpiexec not found: install MPICH (apt-get install mpich libmpich-dev)");
    let mut child = Command::new(mpiexec)
        .args(["-n", "2", env!("CARGO_BIN_EXE_proxystore-bench"), "mpi"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mpiexec still running after {deadline:?} (a hang):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "proxystore-bench-test-{tag}-{}",
        std::process::id()
    ));
    std::fs::remove_dir_all(&d).ok();
    d
}

fn csv_rows(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn quick_run_writes_table_csv_and_chart() {
    let out = out_dir("ok");
    let o = run(
        &[
            "--pattern",
            "all",
            "--connectors",
            "file",
            "--sizes",
            "1KiB,1MiB",
            "--reps",
            "2",
            "--warmup",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("| pair | 2 | file | 1MiB |"), "{stdout}");
    assert!(stdout.contains("| pair | 2 | mpi-get | 1MiB |"), "{stdout}");
    let rows = csv_rows(&out.join("mpi.csv"));
    // 3 patterns x 2 sizes x (mpi: resolve+resolve_read_all+e2e,
    // file: put+resolve+resolve_read_all+e2e), and mpi-get (pair, fan-out)
    // x 2 sizes x (resolve+resolve_read_all+e2e)
    assert_eq!(rows.len(), 3 * 2 * 7 + 2 * 2 * 3, "{rows:#?}");
    assert!(rows.iter().all(|r| r.starts_with("proxystore-rs,mpi-")));
    // MB/s (12th column) only for what moved or was read: the file
    // connector's touch of its mapping has none, its read-all and MPI's do.
    let mbps = |conn: &str, op: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.contains(&format!(",{conn},bytes,")) && r.contains(&format!(",{op},")))
            .map(|r| r.split(',').nth(11).unwrap().to_string())
            .collect()
    };
    assert!(
        mbps("file", "resolve").iter().all(String::is_empty),
        "{rows:#?}"
    );
    for (conn, op) in [
        ("file", "resolve_read_all"),
        ("mpi", "resolve"),
        ("mpi", "resolve_read_all"),
    ] {
        let v = mbps(conn, op);
        assert_eq!(v.len(), 6, "{conn} {op}: {rows:#?}");
        assert!(
            v.iter().all(|m| m.parse::<f64>().is_ok_and(|m| m > 0.0)),
            "{conn} {op}: {v:?}"
        );
    }
    assert!(
        stdout.contains("| pair | 2 | file | 1MiB | mapped |"),
        "{stdout}"
    );
    assert!(stdout.contains("resolve+read all p50"), "{stdout}");
    assert!(
        std::fs::read_to_string(out.join("mpi.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn failing_rank_ends_the_run_cleanly_with_partial_results() {
    // Local-connector proxies cannot resolve in another process: the consumer
    // rank fails for real (no fault injection).
    let out = out_dir("fail");
    let o = run(
        &[
            "--pattern",
            "pair",
            "--connectors",
            "local",
            "--sizes",
            "1KiB",
            "--reps",
            "2",
            "--warmup",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "must exit non-zero");
    assert!(
        stderr.contains("in-process only"),
        "message names the cause:\n{stderr}"
    );
    let rows = csv_rows(&out.join("mpi.csv"));
    assert!(
        rows.iter().any(|r| r.contains(",mpi,")),
        "partial results (the MPI reference) are written: {rows:?}"
    );
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn unknown_connector_is_a_clear_error() {
    let out = out_dir("unknown");
    let o = run(
        &[
            "--pattern",
            "pair",
            "--connectors",
            "nosuch",
            "--sizes",
            "1KiB",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("unknown benchmark connector"), "{stderr}");
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn missing_server_on_the_producer_ends_the_run_cleanly() {
    // Nothing listens on port 1: the producer's first put fails while the
    // consumer waits for a proxy. Every rank must learn it and exit.
    let out = out_dir("noserver");
    let o = run(
        &[
            "--pattern",
            "all",
            "--connectors",
            "redis",
            "--redis",
            "127.0.0.1:1",
            "--sizes",
            "1KiB",
            "--reps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("refused"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| pair | 2 | mpi | 1KiB |"),
        "partial table printed:\n{stdout}"
    );
    assert!(
        csv_rows(&out.join("mpi.csv"))
            .iter()
            .any(|r| r.contains(",mpi,"))
    );
    std::fs::remove_dir_all(out).ok();
}

/// Proxy futures across 3 MPI ranks: made on rank 0, set on rank 1, awaited
/// on all three (woken by inotify), within a deadline.
#[test]
fn proxy_futures_across_mpi_ranks() {
    let mpiexec =
        mpiexec().expect("mpiexec not found: install MPICH (apt-get install mpich libmpich-dev)");
    let mut child = Command::new(mpiexec)
        .args([
            "-n",
            "3",
            env!("CARGO_BIN_EXE_proxystore-bench"),
            "patterns-mpi",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("patterns-mpi hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in 0..3 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("patterns-mpi rank {r} ok")))
            .unwrap_or_else(|| panic!("no answer from rank {r}:\n{stdout}"));
        let ms: u64 = line.rsplit(' ').nth(1).unwrap().parse().unwrap();
        if r == 1 {
            assert!(
                ms >= 190,
                "the result is set 200 ms after rank 1 starts waiting: {line}"
            );
        }
    }
}
