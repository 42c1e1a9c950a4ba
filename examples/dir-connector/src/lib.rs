//! An example [`Connector`]: objects as files in one directory, small and
//! complete, written against the documented contract only. It passes the
//! conformance suite unchanged (`tests/conformance.rs`).
//!
//! What each piece is for:
//! - keys are random UUIDs, never counters: instances built from the same
//!   configuration (in other processes too) share the directory and must
//!   never mint the same key;
//! - every write goes to a temporary file that is renamed into place, so a
//!   reader polling a deferrable key never sees part of an object;
//! - dropping an instance deletes nothing (`outlives_process`); `close`
//!   deletes the directory only with `clear`, and a second `close` is fine;
//! - `kind()`, `config().kind` and [`FromConfig::KIND`] are the same string.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload,
    Result,
};
use serde::{Deserialize, Serialize};

/// The kind this connector is registered under and writes in its configuration.
pub const KIND: &str = "dir";

/// The key: a UUID, which is also the file name.
#[derive(Serialize, Deserialize)]
struct DirKey {
    id: [u8; 16],
}

/// The options, i.e. everything another process needs (the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirOptions {
    /// The directory holding the objects.
    pub dir: PathBuf,
    /// Whether `close` deletes the directory.
    #[serde(default)]
    pub clear: bool,
}

/// Objects as files `<dir>/<uuid>`.
pub struct DirConnector {
    opts: DirOptions,
}

impl fmt::Debug for DirConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirConnector({})", self.opts.dir.display())
    }
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl DirConnector {
    /// A connector over `dir` (created if missing); with `clear`, `close`
    /// deletes the directory and every object in it.
    pub fn new(dir: impl Into<PathBuf>, clear: bool) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(DirConnector {
            opts: DirOptions { dir, clear },
        })
    }

    fn path(&self, key: &Key) -> Result<PathBuf> {
        let k: DirKey = key.decode(KIND)?; // a malformed key is InvalidKey
        let name = uuid::Uuid::from_bytes(k.id).simple().to_string();
        Ok(self.opts.dir.join(name))
    }

    /// Write to a temporary file, then rename it into place: all or nothing.
    fn write(&self, path: &Path, data: &Payload) -> Result<()> {
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = fs::File::create(&tmp).and_then(|mut f| {
            for part in data.parts() {
                f.write_all(part)?;
            }
            Ok(())
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("writing {}", path.display()), e));
        }
        Ok(())
    }

    fn new_dir_key() -> Key {
        Key::encode(&DirKey {
            id: *uuid::Uuid::new_v4().as_bytes(),
        })
    }
}

impl Connector for DirConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            cross_process: true,
            outlives_process: true,
            ..Capabilities::MINIMAL
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let key = Self::new_dir_key();
        self.write(&self.path(&key)?, &data)?;
        Ok(key)
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        data.into_iter().map(|d| self.put(d)).collect()
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        not_found_is_none(fs::read(&path))
            .map(|v| v.map(Bytes::from))
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let path = self.path(key)?;
        not_found_is_none(fs::metadata(&path))
            .map(|m| m.is_some())
            .map_err(|e| Error::io(format!("checking {}", path.display()), e))
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let path = self.path(key)?;
        not_found_is_none(fs::remove_file(&path))
            .map(drop)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))
    }

    /// With `clear`, deletes the directory (a missing one is fine, so a second
    /// `close` is too). Later operations work on the directory as it is: reads
    /// find nothing and writes fail with a (permanent) I/O error.
    fn close(&self) -> Result<()> {
        if self.opts.clear {
            let dir = &self.opts.dir;
            not_found_is_none(fs::remove_dir_all(dir))
                .map_err(|e| Error::io(format!("deleting {}", dir.display()), e))?;
        }
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.opts)
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }
}

impl Deferrable for DirConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(Self::new_dir_key())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        self.write(&self.path(key)?, &data)
    }
}

impl FromConfig for DirConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        let o: DirOptions = config.options()?;
        DirConnector::new(o.dir, o.clear)
    }
}

/// Make the `"dir"` kind rebuildable from configurations in this process
/// (call it before resolving proxies that name it).
pub fn register() {
    proxy_core::registry::register_connector::<DirConnector>();
}
