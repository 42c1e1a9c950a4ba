//! The Python ProxyStore 1.1.0 for interop tests: a virtual environment
//! created once (and reused) with `pip install proxystore==1.1.0 numpy redis
//! pyzmq confluent-kafka`, at `$PROXYSTORE_PY_VENV` or `~/.cache/proxystore-rs-py/venv-1.1.0`.
//! It needs `python3` with the `venv` module and access to PyPI the first
//! time; without them the tests that use it fail with a message saying so.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const PIP_SPEC: [&str; 5] = [
    "proxystore==1.1.0",
    "numpy",
    "redis",
    "pyzmq",
    "confluent-kafka",
];
const CHECK: &str = "import proxystore, numpy, redis, zmq, confluent_kafka; assert proxystore.__version__ == '1.1.0', proxystore.__version__";

fn venv_dir() -> PathBuf {
    if let Ok(d) = std::env::var("PROXYSTORE_PY_VENV") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(home).join(".cache/proxystore-rs-py/venv-1.1.0")
}

pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The venv's python, creating the venv on first use.
pub fn python() -> &'static PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let dir = venv_dir();
        let py = dir.join("bin/python");
        let ready = |py: &PathBuf| {
            Command::new(py)
                .args(["-c", CHECK])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if ready(&py) {
            return py;
        }
        // Other test processes (e.g. under cargo-nextest) may be creating it
        // too: take an exclusive lock on a file next to it, then look again.
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let lock_path = dir.with_extension("lock");
        let lock = std::fs::File::create(&lock_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
        // SAFETY: flock on a file descriptor we own; released when `lock` closes.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", lock_path.display());
        if ready(&py) {
            return py;
        }
        eprintln!("creating the Python ProxyStore venv at {}", dir.display());
        run(
            Command::new("python3").args(["-m", "venv", "--clear"]).arg(&dir),
            "`python3 -m venv` (install python3 and python3-venv: Debian `apt-get install -y python3-venv`)",
        );
        run(
            Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(PIP_SPEC),
            "`pip install proxystore==1.1.0 numpy redis pyzmq confluent-kafka` (needs access to PyPI)",
        );
        run(Command::new(&py).args(["-c", CHECK]), "importing proxystore 1.1.0");
        drop(lock);
        py
    })
}
