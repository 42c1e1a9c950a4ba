//! Who may use an object server: the job's secret, required by default.
//!
//! A server always requires a secret unless its owner turns that off
//! knowingly (`--no-auth`, or `PROXYSTORE_SERVER_AUTH=none`). Where it comes
//! from, first found first:
//! 1. given explicitly: the server's `--secret-file`, the connector's `secret`
//!    option (read but never written into a configuration, so it never
//!    travels inside a proxy);
//! 2. the environment: `PROXYSTORE_SERVER_SECRET`, else the file named by
//!    `PROXYSTORE_SERVER_SECRET_FILE` (one variable exported in a batch
//!    script reaches every task of a job);
//! 3. **the user's secret file**, with nothing configured:
//!    `$PROXYSTORE_USER_SECRET_FILE`, else `~/.proxystore/server-secret`.
//!    The first server or client of a user that finds none creates it with
//!    32 random bytes, mode 0600 in a 0700 directory; every later server and
//!    client of that user reads it. Home directories are shared across the
//!    nodes of a cluster, so a user's processes on every node agree, and
//!    another user's processes (their own file, or none) are "unauthorized".
//!    A file that other users could read, or that another user owns, is
//!    refused.
//!
//! The secret is never sent: at hello, client and server each prove they
//! hold it (HMAC over fresh nonces and the address the client dialed, see
//! [`crate::handshake`]); until a hello is accepted a connection is served
//! nothing. The control plane is plain TCP:
//! the secret keeps other users' processes out of a job's objects on a shared
//! network, as Redis's password does; it is not encryption.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proxy_core::{Error, Result};

/// Environment variable holding the secret itself.
pub const SECRET_ENV: &str = "PROXYSTORE_SERVER_SECRET";
/// Environment variable naming a file that holds the secret.
pub const SECRET_FILE_ENV: &str = "PROXYSTORE_SERVER_SECRET_FILE";
/// Environment variable naming the user's secret file (default
/// `~/.proxystore/server-secret`).
pub const USER_SECRET_FILE_ENV: &str = "PROXYSTORE_USER_SECRET_FILE";
/// Environment variable that turns authentication off when set to `none`
/// (servers then accept anyone who reaches their port; clients send no
/// secret unless one is given).
pub const AUTH_ENV: &str = "PROXYSTORE_SERVER_AUTH";

/// A secret; `Debug` never shows it, comparison takes constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Fill `buf` from the kernel's random source (`getrandom(2)`).
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// A random 64-bit number from the kernel's random source.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if random_bytes(&mut b).is_err() {
        // getrandom(2) exists since Linux 3.17; this is only a fallback.
        use std::hash::{BuildHasher, RandomState};
        return RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id()));
    }
    u64::from_ne_bytes(b)
}

fn home_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the
    // string is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
        Some(PathBuf::from(
            std::ffi::OsStr::from_encoded_bytes_unchecked(dir.to_bytes()),
        ))
    }
}

/// Whether authentication was turned off knowingly (`PROXYSTORE_SERVER_AUTH=none`).
pub fn auth_disabled_by_env() -> bool {
    std::env::var(AUTH_ENV).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "none" || v == "off"
    })
}

impl Secret {
    /// A secret from bytes (leading and trailing white space removed, as a
    /// file written by `echo` ends with a newline); empty is an error.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Secret> {
        let b = bytes.as_ref().trim_ascii();
        if b.is_empty() {
            return Err(Error::config("object-server", "the secret is empty"));
        }
        Ok(Secret(b.to_vec()))
    }

    /// Read a secret from a file.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let b = std::fs::read(path)
            .map_err(|e| Error::io(format!("read the secret file {}", path.display()), e))?;
        Secret::new(b)
    }

    /// The secret of this process's environment: `PROXYSTORE_SERVER_SECRET`,
    /// else the file named by `PROXYSTORE_SERVER_SECRET_FILE`, else none.
    pub fn from_env() -> Result<Option<Secret>> {
        if let Some(v) = std::env::var_os(SECRET_ENV).filter(|v| !v.is_empty()) {
            return Secret::new(v.as_encoded_bytes()).map(Some);
        }
        match std::env::var_os(SECRET_FILE_ENV).filter(|v| !v.is_empty()) {
            Some(p) => Secret::from_file(Path::new(&p)).map(Some),
            None => Ok(None),
        }
    }

    /// Where this user's secret file is: `$PROXYSTORE_USER_SECRET_FILE`,
    /// else `~/.proxystore/server-secret`.
    pub fn user_file() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os(USER_SECRET_FILE_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        home_dir()
            .map(|h| h.join(".proxystore").join("server-secret"))
            .ok_or_else(|| {
                Error::config(
                    "object-server",
                    format!(
                        "no home directory for the user's secret file: set {SECRET_ENV}, \
                         {SECRET_FILE_ENV} or {USER_SECRET_FILE_ENV}"
                    ),
                )
            })
    }

    /// This user's secret, from [`Secret::user_file`], created (32 random
    /// bytes, mode 0600) if there is none yet. Concurrent first calls agree:
    /// the file is written aside and linked into place, and whoever loses the
    /// race reads the winner's.
    pub fn user() -> Result<Secret> {
        Secret::user_at(&Secret::user_file()?)
    }

    fn user_at(path: &Path) -> Result<Secret> {
        let path = path.to_path_buf();
        match Secret::read_private(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("the secret file {}", path.display()), e)),
            Ok(s) => return Ok(s),
        }
        let ctx = |what: &str| format!("create the user's secret file {}: {what}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(ctx("its directory"), e))?;
        }
        let mut raw = [0u8; 32];
        random_bytes(&mut raw).map_err(|e| Error::io(ctx("getrandom"), e))?;
        let text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = path.with_extension(format!("tmp-{}-{:x}", std::process::id(), random_u64()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            match std::fs::hard_link(&tmp, &path) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                r => r,
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        written.map_err(|e| Error::io(ctx("write"), e))?;
        Secret::read_private(&path).map_err(|e| Error::io(ctx("read back"), e))
    }

    /// Read a secret file that must be this user's and private to it.
    fn read_private(path: &Path) -> io::Result<Secret> {
        let f = std::fs::File::open(path)?;
        let m = f.metadata()?;
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        if m.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("owned by uid {}, not by this user (uid {me})", m.uid()),
            ));
        }
        if m.permissions().mode() & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mode {:o}: other users may read it (chmod 600 {})",
                    m.permissions().mode() & 0o777,
                    path.display()
                ),
            ));
        }
        let mut b = Vec::new();
        io::Read::read_to_end(&mut &f, &mut b)?;
        Secret::new(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    /// The secret a server requires: `explicit` (its `--secret-file`), else
    /// the environment's, else none if `no_auth` or `PROXYSTORE_SERVER_AUTH=none`,
    /// else this user's ([`Secret::user`]; an error if it cannot be had: a
    /// server never starts open by accident).
    pub fn for_server(explicit: Option<&Path>, no_auth: bool) -> Result<Option<Secret>> {
        if let Some(p) = explicit {
            return Secret::from_file(p).map(Some);
        }
        if let Some(s) = Secret::from_env()? {
            return Ok(Some(s));
        }
        if no_auth || auth_disabled_by_env() {
            return Ok(None);
        }
        Secret::user().map(Some).map_err(|e| {
            Error::config(
                "object-server",
                format!(
                    "{e}; give the server a secret ({SECRET_ENV}, {SECRET_FILE_ENV}, \
                     --secret-file) or turn authentication off knowingly (--no-auth)"
                ),
            )
        })
    }

    /// The secret a client brings: `explicit` (the connector's `secret`
    /// option), else the environment's, else none if
    /// `PROXYSTORE_SERVER_AUTH=none`, else this user's if it can be had
    /// (else none: a server that needs one then answers "unauthorized").
    pub fn for_client(explicit: Option<&str>) -> Result<Option<Secret>> {
        if let Some(s) = explicit {
            return Secret::new(s).map(Some);
        }
        if let Some(s) = Secret::from_env()? {
            return Ok(Some(s));
        }
        if auth_disabled_by_env() {
            return Ok(None);
        }
        Ok(Secret::user().ok())
    }

    /// The bytes (the key of the hello's proofs, and handed to a spawned
    /// server through its environment).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_and_redaction() {
        let s = Secret::new("  s3cret\n").unwrap();
        assert_eq!(s.expose(), b"s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(Secret::new(" \n").is_err());
    }

    #[test]
    fn random_bytes_differ() {
        let (a, b) = (random_u64(), random_u64());
        assert_ne!(a, b);
        let mut buf = [0u8; 64];
        random_bytes(&mut buf).unwrap();
        assert!(buf.iter().any(|&x| x != 0));
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ps-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn private_files_only() {
        let d = scratch("private");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("s");
        std::fs::write(&p, "abc\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Secret::read_private(&p).unwrap_err();
        assert!(e.to_string().contains("other users may read it"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Secret::read_private(&p).unwrap().expose() == b"abc");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_user_file_is_created_once_and_private() {
        let d = scratch("user");
        let p = d.join("sub").join("server-secret");
        let secrets: Vec<Secret> = std::thread::scope(|s| {
            let h: Vec<_> = (0..8).map(|_| s.spawn(|| Secret::user_at(&p))).collect();
            h.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        assert!(
            secrets.windows(2).all(|w| w[0] == w[1]),
            "racing creators disagree"
        );
        assert_eq!(secrets[0].expose().len(), 64);
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let dm = std::fs::metadata(p.parent().unwrap()).unwrap();
        assert_eq!(dm.permissions().mode() & 0o777, 0o700);
        assert_eq!(Secret::user_at(&p).unwrap(), secrets[0]);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
