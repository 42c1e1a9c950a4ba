//! Control connections: TCP, or a Unix-domain socket between processes on
//! the server's node, where the kernel tells the server who connected
//! (`SO_PEERCRED`): a process of the server's own user needs no secret.
//!
//! A server listening on `IP:PORT` also listens on
//! `<socket dir>/ctl-IP-PORT.sock`. The socket directory is
//! `$PROXYSTORE_SOCKET_DIR`, else `$XDG_RUNTIME_DIR/proxystore`, else
//! `$TMPDIR/proxystore-<uid>` (`/tmp/proxystore-<uid>`); a default one is
//! created mode 0700 and refused if another user owns it or may enter it.
//! A client whose server address is one of its own node's connects there
//! first (for `IP:PORT`, then for the unspecified address `0.0.0.0:PORT`
//! or `[::]:PORT` that a server listening everywhere binds), and over TCP if
//! there is no such socket.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the directory of the servers' Unix sockets.
pub const SOCKET_DIR_ENV: &str = "PROXYSTORE_SOCKET_DIR";

/// A control connection.
#[derive(Debug)]
pub enum Conn {
    /// Over TCP (from anywhere).
    Tcp(TcpStream),
    /// Over a Unix-domain socket (from this node).
    Unix(UnixStream),
}

impl Conn {
    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    /// Shut both directions down (wakes a thread blocked on it).
    pub fn shutdown(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Bound every read (`None`: no bound).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t),
            Conn::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Bound every write (`None`: no bound).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_write_timeout(t),
            Conn::Unix(s) => s.set_write_timeout(t),
        }
    }

    /// Non-blocking (`true`) or blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_nonblocking(on),
            Conn::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// Blocking mode, no Nagle delay (TCP).
    pub(crate) fn prepare(&self) {
        match self {
            Conn::Tcp(s) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_nodelay(true);
            }
            Conn::Unix(s) => {
                let _ = s.set_nonblocking(false);
            }
        }
    }

    /// The user id of the process at the other end of a Unix-domain
    /// connection, as the kernel recorded it when it connected; `None` over
    /// TCP.
    pub fn peer_uid(&self) -> Option<u32> {
        let Conn::Unix(s) = self else { return None };
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED fills a ucred of `len` bytes on a socket we own.
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(cred.uid)
    }

    /// The local address of a TCP connection (where the client's connection
    /// arrived); `None` on a Unix-domain one.
    pub(crate) fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr().ok(),
            Conn::Unix(_) => None,
        }
    }

    /// Who is at the other end, for messages.
    pub(crate) fn peer_name(&self) -> String {
        match self {
            Conn::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Conn::Unix(_) => match self.peer_uid() {
                Some(u) => format!("local uid {u}"),
                None => "local".into(),
            },
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write_vectored(bufs),
            Conn::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// This user's private directory under `base` (`proxystore-<uid>`, or
/// `proxystore` under a per-user `XDG_RUNTIME_DIR`): created mode 0700,
/// refused if it is not a directory of this user that only it may enter.
pub(crate) fn private_dir_in(base: &Path, per_user_base: bool) -> io::Result<PathBuf> {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = if per_user_base {
        base.join("proxystore")
    } else {
        base.join(format!("proxystore-{uid}"))
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let m = std::fs::symlink_metadata(&dir)?;
    if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory of this user (uid {uid}): remove it",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// This user's private directory for the logs of spawned servers:
/// `$TMPDIR/proxystore-<uid>`.
pub(crate) fn private_tmp_dir() -> io::Result<PathBuf> {
    private_dir_in(&std::env::temp_dir(), false)
}

/// The directory of the servers' Unix sockets (see the module docs).
pub fn socket_dir() -> io::Result<PathBuf> {
    if let Some(d) = std::env::var_os(SOCKET_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        if Path::new(&d).is_dir() {
            return private_dir_in(Path::new(&d), true);
        }
    }
    private_tmp_dir()
}

/// The socket of the server listening on `addr`, in `dir`.
pub fn socket_path(dir: &Path, addr: &SocketAddr) -> PathBuf {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    dir.join(format!("ctl-{ip}-{}.sock", addr.port()))
}

/// Whether `ip` is one of this node's addresses (it can be bound here).
pub(crate) fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || TcpListener::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A Unix-domain connection to the server listening on `addr` on this
/// node, if it has a socket (`None`: connect over TCP).
pub(crate) fn connect_local(addr: &SocketAddr) -> Option<UnixStream> {
    if !is_local_ip(addr.ip()) {
        return None;
    }
    // Where this process looks, found once (the environment does not change).
    static DIR: std::sync::LazyLock<Option<PathBuf>> =
        std::sync::LazyLock::new(|| socket_dir().ok());
    let dir = DIR.as_deref()?;
    let any = match addr {
        SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
        SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
    };
    [addr.ip(), any].into_iter().find_map(|ip| {
        UnixStream::connect(socket_path(dir, &SocketAddr::new(ip, addr.port()))).ok()
    })
}

/// This host's name (`gethostname`), if it has one.
pub(crate) fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at
    // most that many and we look for the terminating NUL ourselves.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let n = buf.iter().position(|&b| b == 0)?;
    String::from_utf8(buf[..n].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn peer_credentials_and_names() {
        let dir = std::env::temp_dir().join(format!("ps-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let addr: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let path = socket_path(&dir, &addr);
        assert!(path.ends_with("ctl-127.0.0.1-7.sock"));
        let six: SocketAddr = "[::1]:9".parse().unwrap();
        assert!(socket_path(&dir, &six).ends_with("ctl-[::1]-9.sock"));
        let l = UnixListener::bind(&path).unwrap();
        let c = Conn::Unix(UnixStream::connect(&path).unwrap());
        let (s, _) = l.accept().unwrap();
        let s = Conn::Unix(s);
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(s.peer_uid(), Some(me));
        assert_eq!(c.peer_uid(), Some(me));
        assert_eq!(s.peer_name(), format!("local uid {me}"));
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let tc = Conn::Tcp(TcpStream::connect(t.local_addr().unwrap()).unwrap());
        assert_eq!(tc.peer_uid(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_dirs_are_checked() {
        let base = std::env::temp_dir().join(format!("ps-private-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let d = private_dir_in(&base, true).unwrap();
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir_in(&base, true).unwrap_err();
        assert!(e.to_string().contains("not a private directory"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
