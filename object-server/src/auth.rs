//! The per-job secret of an object server.
//!
//! Given to the server through `PROXYSTORE_SERVER_SECRET` or a file
//! (`--secret-file`, `PROXYSTORE_SERVER_SECRET_FILE`), and to clients the same
//! way or by the connector's `secret` option, which is read but never
//! written into a configuration, so it never travels inside a proxy. The
//! control plane is plain TCP: the secret keeps other users' processes out
//! of a job's objects on a shared network, as Redis's password does; it is
//! not encryption.

use std::path::Path;

use proxy_core::{Error, Result};

/// Environment variable holding the secret itself.
pub const SECRET_ENV: &str = "PROXYSTORE_SERVER_SECRET";
/// Environment variable naming a file that holds the secret.
pub const SECRET_FILE_ENV: &str = "PROXYSTORE_SERVER_SECRET_FILE";

/// A secret; `Debug` never shows it, comparison takes constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
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

    /// The bytes (sent at hello).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `given` is this secret (time independent of where they differ).
    pub(crate) fn matches(&self, given: Option<&[u8]>) -> bool {
        let Some(g) = given else { return false };
        let mut diff = (g.len() != self.0.len()) as u8;
        for (i, &b) in self.0.iter().enumerate() {
            diff |= b ^ g.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_redaction() {
        let s = Secret::new("  s3cret\n").unwrap();
        assert!(s.matches(Some(b"s3cret")));
        assert!(!s.matches(Some(b"s3cre")));
        assert!(!s.matches(Some(b"s3cretX")));
        assert!(!s.matches(Some(b"")));
        assert!(!s.matches(None));
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(Secret::new(" \n").is_err());
    }
}
