//! Spawn on demand: start an object server on this node when none answers
//! at the configured address (as ProxyStore does), in a session of its own so
//! that it outlives the process that started it, and with an idle exit so
//! that it does not outlive its use by long.
//!
//! Races are settled by the bind: every process that found no server starts
//! one; the servers bind their listening socket before anything else, so all
//! but one fail at once and exit, and every spawner then connects to the one
//! that won.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::auth::{SECRET_ENV, SECRET_FILE_ENV, Secret};

/// The server program a transport spawns.
#[derive(Debug, Clone, Copy)]
pub struct ServerBinary {
    /// File name of the binary.
    pub name: &'static str,
    /// Environment variable naming the binary to use instead.
    pub env: &'static str,
    /// How to build it (said when it cannot be found).
    pub build: &'static str,
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The candidates for the server binary, in order: `$PROXYSTORE_UCX_SERVER`,
/// next to the current executable (and one level up, for cargo's `deps/`
/// layout of test binaries), then every directory of `PATH`.
fn candidates(
    name: &str,
    env: Option<OsString>,
    exe: Option<PathBuf>,
    path: Option<OsString>,
) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        // An explicit choice is the only one considered.
        return vec![PathBuf::from(e)];
    }
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        v.push(dir.join(name));
        if let Some(up) = dir.parent() {
            v.push(up.join(name));
        }
    }
    if let Some(path) = path {
        v.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    v
}

fn locate(
    bin: &ServerBinary,
    env: Option<OsString>,
    exe: Option<PathBuf>,
    path: Option<OsString>,
) -> Result<PathBuf, String> {
    let from_env = env.as_ref().is_some_and(|e| !e.is_empty());
    let tried = candidates(bin.name, env, exe, path);
    if let Some(p) = tried.iter().find(|p| is_executable(p)) {
        return Ok(p.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "cannot find the {} binary to spawn; tried {}{}",
        bin.name,
        if list.is_empty() {
            "nothing (no current executable, no PATH)".to_string()
        } else {
            list.join(", ")
        },
        if from_env {
            format!(" (from {})", bin.env)
        } else {
            format!(
                " (set {}, or install it next to this program or on PATH: {})",
                bin.env, bin.build
            )
        }
    ))
}

/// The server binary that spawn on demand would start: `$<bin.env>`, else
/// next to the current executable, else on `PATH`. The error lists every
/// place tried.
pub fn locate_server(bin: &ServerBinary) -> Result<PathBuf, String> {
    locate(
        bin,
        std::env::var_os(bin.env),
        std::env::current_exe().ok(),
        std::env::var_os("PATH"),
    )
}

fn resolve(addr: &str) -> Vec<SocketAddr> {
    addr.to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// Whether something accepts TCP connections at `addr`.
pub(crate) fn answers(addr: &str) -> bool {
    resolve(addr)
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok())
}

/// Start `bin` for `server` on this node with `args` (and `secret` in its
/// environment) and wait (up to `timeout`) until a server answers there:
/// ours, or the one that won a race.
pub(crate) fn spawn_server(
    bin: &ServerBinary,
    server: &str,
    args: &[String],
    secret: Option<&Secret>,
    timeout: Duration,
) -> Result<(), String> {
    let addrs = resolve(server);
    let Some(listen) = addrs
        .iter()
        .find(|a| crate::stream::is_local_ip(a.ip()))
        .copied()
    else {
        return Err(format!(
            "no object server answers at {} and it is not an address of this node, \
             so none can be spawned here",
            server
        ));
    };
    if listen.port() == 0 {
        return Err(format!(
            "cannot spawn an object server for {}: it needs a fixed port",
            server
        ));
    }
    let exe = locate_server(bin)?;
    let dir = crate::stream::private_tmp_dir()
        .map_err(|e| format!("the directory of spawned servers' logs: {e}"))?;
    let log = dir.join(format!(
        "{}-{}.log",
        bin.name,
        listen.to_string().replace([':', '[', ']'], "_")
    ));
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&log)
        .map_err(|e| {
            format!(
                "cannot open the spawned server's log {}: {e}",
                log.display()
            )
        })?;
    let err = out
        .try_clone()
        .map_err(|e| format!("log {}: {e}", log.display()))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("--listen").arg(listen.to_string());
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // The connector's secret, through the environment (never argv, which
    // every user on the node can read in /proc).
    if let Some(s) = secret {
        cmd.env(SECRET_ENV, std::ffi::OsStr::from_bytes(s.expose()));
        cmd.env_remove(SECRET_FILE_ENV);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setsid, which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own: no controlling terminal, not in our
            // process group, so it survives us and our terminal's signals.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let deadline = Instant::now() + timeout;
    let mut exited = None;
    loop {
        if answers(server) {
            break;
        }
        if exited.is_none() {
            // Exited: most likely it lost a race (its bind failed) and the
            // winner is still starting; else the log says why.
            exited = child.try_wait().ok().flatten();
        }
        if Instant::now() > deadline {
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(format!(
                "spawned {} --listen {listen}{}, but no server answered within {timeout:?} (see {})",
                exe.display(),
                exited.map(|s| format!(" ({s})")).unwrap_or_default(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if exited.is_none() {
        // Ours is running (or exiting after losing a race): reap it whenever it
        // ends, so it never lingers as a zombie while this process lives.
        let _ = std::thread::Builder::new()
            .name("server-reaper".into())
            .spawn(move || {
                let _ = child.wait();
            });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_order_and_error() {
        let bin = ServerBinary {
            name: "proxystore-ucx-server",
            env: "PROXYSTORE_UCX_SERVER",
            build: "cargo build",
        };
        let exe = PathBuf::from("/nonexistent/bin/deps/app");
        let path = OsString::from("/nonexistent/a:/nonexistent/b");
        let err = locate(&bin, None, Some(exe.clone()), Some(path.clone())).unwrap_err();
        for p in [
            "/nonexistent/bin/deps/proxystore-ucx-server",
            "/nonexistent/bin/proxystore-ucx-server",
            "/nonexistent/a/proxystore-ucx-server",
            "/nonexistent/b/proxystore-ucx-server",
            bin.env,
        ] {
            assert!(err.contains(p), "{p} missing in: {err}");
        }
        let err = locate(&bin, Some("/nonexistent/srv".into()), Some(exe), Some(path)).unwrap_err();
        assert!(err.contains("/nonexistent/srv"), "{err}");
        assert!(!err.contains("/nonexistent/a/"), "{err}");
        // Found on PATH.
        let dir = std::env::temp_dir().join(format!("ps-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(bin.name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = locate(&bin, None, None, Some(dir.clone().into_os_string())).unwrap();
        assert_eq!(found, file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
