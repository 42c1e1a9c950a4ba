//! Secure by default: a server started with no options requires a secret;
//! the processes of its user find it with nothing configured (the user's
//! private secret file), another user's processes are "unauthorized".
//!
//! The other user is a child process of this test binary run as `nobody`
//! (uid and gid 65534, through `setpriv`), with a home directory of its own:
//! what a second user on a shared login or compute node has. The test binary
//! is copied where that user may run it. Needs root (CI and the developers'
//! machines run as root); elsewhere the cross-user tests say so and fail.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ServerProcess;
use object_server::proto::{self, Request, Response};
use object_server::testkit::access::ask;
use proxy_core::{Connector, Payload};
use ucx_connector::{TransportConfig, UcxConfig, UcxConnector};

const TLS: &str = "shm,cma,self";
const CHILD_ENV: &str = "PS_OTHER_USER_SERVER";
const CHILD_TLS_ENV: &str = "PS_OTHER_USER_TLS";
const NOBODY: u32 = 65534;

/// Child side of the cross-user tests (run as another user by them; not a
/// test of its own): a put and a get through a connector with nothing
/// configured, each outcome printed on a line.
#[test]
#[ignore = "child-process entry point"]
fn other_user_entry() {
    let addr = std::env::var(CHILD_ENV).expect("a child-process entry point: run by its parent");
    let tls = std::env::var(CHILD_TLS_ENV).unwrap_or_else(|_| TLS.into());
    let c = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(&tls)
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    match c.put(Payload::from(vec![66u8; 5000])) {
        Ok(k) => {
            println!("@@put ok");
            let got = c.get(&k).unwrap();
            println!("@@get {:?}", got.map(|b| b.len()));
        }
        Err(e) => println!("@@put error: {e}"),
    }
}

/// A scratch directory `nobody` can use: the test binary's copy and its home.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("ps-other-user-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("home")).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(d.join("home"), Some(NOBODY), Some(NOBODY)).unwrap();
        let exe = d.join("test-binary");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy_private_libraries(&exe, &d.join("lib"));
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shared libraries `exe` loads from outside the system's directories
/// (a UCX of the build's own, e.g. under the target directory, which the
/// other user may not be able to read), copied to `lib` with the UCX
/// modules beside them, so that the copy runs as another user.
fn copy_private_libraries(exe: &Path, lib: &Path) {
    std::fs::create_dir_all(lib).unwrap();
    let out = Command::new("ldd").arg(exe).output().expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(path) = line
            .split_once("=> ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .map(PathBuf::from)
        else {
            continue;
        };
        if ["/usr/", "/lib"].iter().any(|p| path.starts_with(p)) || !path.is_file() {
            continue;
        }
        std::fs::copy(&path, lib.join(path.file_name().unwrap())).unwrap();
        let modules = path.parent().unwrap().join("ucx");
        if modules.is_dir() && !lib.join("ucx").exists() {
            std::fs::create_dir_all(lib.join("ucx")).unwrap();
            for m in std::fs::read_dir(&modules).unwrap().flatten() {
                if m.path().is_file() {
                    std::fs::copy(m.path(), lib.join("ucx").join(m.file_name())).unwrap();
                }
            }
        }
    }
    for e in walk(lib) {
        let mode = if e.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = vec![d.to_path_buf()];
    for e in std::fs::read_dir(d).unwrap().flatten() {
        if e.path().is_dir() {
            v.extend(walk(&e.path()));
        } else {
            v.push(e.path());
        }
    }
    v
}

/// Run the child entry point as `nobody` against `addr` (its Unix-domain
/// sockets looked for in `socket_dir`, else its default); its output lines.
fn as_other_user(scratch: &Scratch, addr: &str, socket_dir: Option<&Path>) -> String {
    as_other_user_over(scratch, addr, socket_dir, TLS)
}

/// [`as_other_user`] with the child's UCX transports `tls`.
fn as_other_user_over(
    scratch: &Scratch,
    addr: &str,
    socket_dir: Option<&Path>,
    tls: &str,
) -> String {
    assert_eq!(
        euid(),
        0,
        "these tests run a process as another user, which needs root"
    );
    let home = scratch.0.join("home");
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .arg(scratch.0.join("test-binary"))
        .args([
            "--ignored",
            "--exact",
            "other_user_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("LD_LIBRARY_PATH", scratch.0.join("lib"))
        .env(CHILD_ENV, addr)
        .env(CHILD_TLS_ENV, tls)
        .envs(socket_dir.map(|d| (object_server::stream::SOCKET_DIR_ENV, d)))
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("@@"),
        "the other user's process printed nothing ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // It had a home of its own, and made its own secret there.
    let own = home.join(".proxystore/server-secret");
    assert_eq!(std::fs::metadata(&own).map(|m| m.uid()).ok(), Some(NOBODY));
    stdout
}

#[test]
fn another_user_is_unauthorized() {
    let scratch = Scratch::new("deny");
    let server = ServerProcess::start(TLS, &[]);
    let mine = UcxConnector::new(UcxConfig::new(&server.addr).with_ucx_tls(TLS)).unwrap();
    let key = mine.put(Payload::from(vec![1u8; 3000])).unwrap();
    let out = as_other_user(&scratch, &server.addr, None);
    assert!(
        out.contains("@@put error") && out.contains("unauthorized"),
        "{out}"
    );
    // Nothing stored by it, nothing taken from the owner's objects.
    assert_eq!(mine.server_stats().unwrap().objects, 1);
    assert_eq!(mine.get(&key).unwrap().as_deref(), Some(&[1u8; 3000][..]));
}

/// The same over the server's Unix-domain socket, in a directory the other
/// user may enter (the default one is private: it could not even connect):
/// the kernel tells the server who connected, and another user must bring
/// the secret there too.
#[test]
fn another_user_is_unauthorized_on_the_unix_socket() {
    let scratch = Scratch::new("deny-unix");
    let dir = scratch.0.join("sockets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = ServerProcess::start(TLS, &["--socket-dir", dir.to_str().unwrap()]);
    let sockets: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sockets.len(), 1, "the server's socket in {}", dir.display());
    // Connecting needs write permission on the socket file.
    std::fs::set_permissions(&sockets[0], std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_other_user(&scratch, &server.addr, Some(&dir));
    assert!(
        out.contains("@@put error") && out.contains("local uid 65534 is not this server's user"),
        "{out}"
    );
    assert_eq!(
        UcxConnector::new(UcxConfig::new(&server.addr).with_ucx_tls(TLS))
            .unwrap()
            .server_stats()
            .unwrap()
            .objects,
        0
    );
}

/// On the Unix-domain socket, a process of the server's own user is
/// served without the secret (the kernel vouches for it); over TCP the
/// same client is refused.
#[test]
fn the_owner_needs_no_secret_on_the_unix_socket() {
    let file = std::env::temp_dir().join(format!("ps-unix-secret-{}", std::process::id()));
    std::fs::write(&file, "a-job-secret-3e1\n").unwrap();
    let f = file.to_str().unwrap();
    let local = ServerProcess::start(TLS, &["--secret-file", f]);
    let tcp_only = ServerProcess::start(TLS, &["--secret-file", f, "--no-unix-socket"]);
    std::fs::remove_file(&file).unwrap();
    let client = |addr: &str| {
        UcxConnector::new(
            UcxConfig::new(addr)
                .with_ucx_tls(TLS)
                .with_timeout(Duration::from_secs(5)),
        )
        .unwrap()
    };
    let c = client(&local.addr);
    let key = c.put(Payload::from(vec![8u8; 200_000])).unwrap();
    assert_eq!(c.get(&key).unwrap().map(|b| b.len()), Some(200_000));
    let e = client(&tcp_only.addr)
        .put(Payload::from(vec![8u8; 10]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unauthorized: wrong secret"), "{e}");
}

/// The control: a server whose owner turned authentication off knowingly
/// serves the other user too (so the refusal above is the secret's doing).
/// Over UCX's `tcp`: its shared-memory transports are this user's only (UCX
/// creates its segments mode 0600, ours are made so), and another user's
/// `shmat` is refused.
#[test]
fn with_auth_off_another_user_is_served() {
    let scratch = Scratch::new("open");
    let server = ServerProcess::start("tcp,self", &["--no-auth"]);
    let out = as_other_user_over(&scratch, &server.addr, None, "tcp,self");
    assert!(
        out.contains("@@put ok") && out.contains("@@get Some(5000)"),
        "{out}"
    );
}

/// The owner's processes need nothing configured: they find the user's
/// secret file, which is private (0600) and was made by the first of them;
/// a hello without it is refused.
#[test]
fn the_owner_needs_nothing_configured() {
    let server = ServerProcess::start(TLS, &[]);
    let c = UcxConnector::new(UcxConfig::new(&server.addr).with_ucx_tls(TLS)).unwrap();
    let key = c.put(Payload::from(vec![3u8; 100_000])).unwrap();
    assert_eq!(c.get(&key).unwrap().map(|b| b.len()), Some(100_000));
    if std::env::var_os(object_server::SECRET_ENV).is_none()
        && std::env::var_os(object_server::SECRET_FILE_ENV).is_none()
    {
        let file = object_server::Secret::user_file().unwrap();
        let m = std::fs::metadata(&file).unwrap();
        assert_eq!(m.permissions().mode() & 0o077, 0, "{}", file.display());
        assert_eq!(m.uid(), euid());
        assert!(Path::new(&file).parent().is_some());
    }
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    let none = Request::Hello {
        version: proto::VERSION,
        transport: "ucx".into(),
        secret: None,
    };
    // It is challenged, and refused anything until it proves the secret.
    assert!(matches!(ask(&mut s, &none), Response::Challenge { .. }));
    match ask(&mut s, &Request::Stats) {
        Response::Unauthorized(m) => assert!(m.contains("needs the job's secret"), "{m}"),
        other => panic!("a hello without a secret was answered {other:?}"),
    }
}

/// This process's effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}
