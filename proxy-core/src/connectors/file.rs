//! [`FileConnector`]: objects as files in a (shared) directory.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::connector::{Capabilities, Connector, ConnectorConfig, Deferrable, FromConfig, Payload};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::url::{QueryKey, StoreUrl, value};

pub(crate) const KIND: &str = "file";
/// Objects at least this large are memory-mapped instead of read.
const MMAP_THRESHOLD: usize = 256 << 10;

/// The key of a file object: a UUID, which is also its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// UUID bytes; the file is `<dir>/<uuid, hyphenated lower case>`.
    pub id: [u8; 16],
}

impl FileKey {
    /// The file name (as ProxyStore's `FileKey.filename`).
    pub fn filename(&self) -> String {
        uuid::Uuid::from_bytes(self.id).hyphenated().to_string()
    }

    /// Parse a ProxyStore file name (a UUID string).
    pub fn from_filename(name: &str) -> Result<Self> {
        uuid::Uuid::parse_str(name)
            .map(|u| FileKey { id: *u.as_bytes() })
            .map_err(|e| Error::InvalidKey {
                connector: KIND.into(),
                reason: format!("file name {name:?} is not a UUID: {e}"),
            })
    }
}

impl From<FileKey> for Key {
    fn from(k: FileKey) -> Key {
        Key::encode(&k)
    }
}

#[derive(Serialize, Deserialize)]
struct FileOptions {
    dir: PathBuf,
    #[serde(default)]
    clear: bool,
}

/// Objects stored as files in a directory on a shared file system (or
/// `/dev/shm` on one node), in ProxyStore's `FileConnector` layout.
///
/// - `put` writes `<dir>/.<uuid>.tmp`, renames it to `<dir>/<uuid>`, then
///   creates the empty marker `<dir>/<uuid>.ready`. A reader only reads objects
///   whose marker exists, and the rename makes the data file complete before it
///   has its name: readers in any process never see a partial object, also for
///   objects written by the Python ProxyStore (which writes the marker last).
/// - `get` of objects of 256 KiB and more maps the file (`mmap`, pre-populated)
///   and hands the mapping out as `Bytes` without a copy; evicting (unlinking)
///   the file later does not disturb a mapping in use. Object files are write
///   once: never modify one in place.
/// - `close` deletes the directory only if the connector was made with
///   `clear = true` (default false, unlike ProxyStore, so a consumer closing its
///   store never deletes the producer's data).
#[derive(Clone)]
pub struct FileConnector {
    dir: PathBuf,
    clear: bool,
}

impl fmt::Debug for FileConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileConnector({})", self.dir.display())
    }
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl FileConnector {
    /// A connector over `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::with_clear(dir, false)
    }

    /// Like [`FileConnector::new`]; with `clear`, [`Connector::close`] deletes the directory.
    pub fn with_clear(dir: impl Into<PathBuf>, clear: bool) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating store directory {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
        Ok(FileConnector { dir, clear })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &Key) -> Result<(PathBuf, PathBuf)> {
        let name = key.decode::<FileKey>(KIND)?.filename();
        Ok((self.dir.join(&name), self.dir.join(format!("{name}.ready"))))
    }

    fn write(&self, id: [u8; 16], data: &Payload) -> Result<Key> {
        let key = FileKey { id };
        let name = key.filename();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let fin = self.dir.join(&name);
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let mut f = File::create(&tmp).map_err(|e| Error::io(ctx("creating", &tmp), e))?;
        if let Err(e) = data.write_all_to(&mut f) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(ctx("writing", &tmp), e));
        }
        drop(f);
        fs::rename(&tmp, &fin).map_err(|e| Error::io(ctx("renaming into place", &fin), e))?;
        let ready = self.dir.join(format!("{name}.ready"));
        File::create(&ready).map_err(|e| Error::io(ctx("creating marker", &ready), e))?;
        Ok(key.into())
    }

    fn read(path: &Path) -> io::Result<Option<Bytes>> {
        let Some(mut f) = not_found_is_none(File::open(path))? else {
            return Ok(None);
        };
        let len = f.metadata()?.len() as usize;
        if len >= MMAP_THRESHOLD {
            return crate::mem::Mmap::file(&f, len).map(|m| Some(Bytes::from_owner(m)));
        }
        // Aligned as the mapping is, so that payloads start on a 64-byte
        // boundary (see `proxy_core::mem::ALIGN`). A file that grew since
        // `metadata` was read is a writer's temporary file, never a final one
        // (objects are renamed into place whole).
        let mut buf = crate::mem::AlignedBuf::zeroed(len);
        f.read_exact(buf.as_mut_slice())?;
        Ok(Some(buf.into_bytes()))
    }
}

impl Connector for FileConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            cross_process: true,
            cross_node: true, // on a shared file system
            outlives_process: true,
            zero_copy_get: true,
            notify: true,
            ..Capabilities::MINIMAL
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        self.write(super::new_id(), &data)
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        super::par_map(&data, |d| self.put(d.clone()))
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let (data, ready) = self.paths(key)?;
        if !ready.exists() {
            return Ok(None);
        }
        Self::read(&data).map_err(|e| Error::io(format!("reading {}", data.display()), e))
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        super::par_map(keys, |k| self.get(k))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let (data, ready) = self.paths(key)?;
        Ok(ready.exists() && data.exists())
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let (data, ready) = self.paths(key)?;
        for p in [ready, data] {
            not_found_is_none(fs::remove_file(&p))
                .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
        }
        Ok(())
    }

    /// With `clear`, deletes the directory (a second `close` finds it gone:
    /// fine). Later operations work on the directory as it is: without
    /// `clear` as before; with it, reads find nothing and writes fail with a
    /// (permanent) I/O error.
    fn close(&self) -> Result<()> {
        if self.clear {
            not_found_is_none(fs::remove_dir_all(&self.dir))
                .map_err(|e| Error::io(format!("clearing {}", self.dir.display()), e))?;
        }
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(
            KIND,
            FileOptions {
                dir: self.dir.clone(),
                clear: self.clear,
            },
        )
    }

    /// The object's file name (a UUID, as ProxyStore's `FileKey.filename`).
    fn key_to_string(&self, key: &Key) -> Result<String> {
        Ok(key.decode::<FileKey>(KIND)?.filename())
    }

    /// A UUID file name (or the hex form of an encoded key).
    fn parse_key(&self, s: &str) -> Result<Key> {
        FileKey::from_filename(s.trim())
            .map(Key::from)
            .or_else(|e| Key::from_hex(s).map_err(|_| e))
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }

    /// Woken by inotify when the object's `.ready` marker appears (any
    /// writer on this node, any process). On a shared file system written
    /// from other nodes the kernel sees no event: a re-check every 50 ms
    /// covers that case. Each thread keeps one watch per directory for its
    /// later waits (closing an inotify instance costs the kernel a
    /// grace period of ~10 ms, and instances per user are limited).
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        use std::os::unix::ffi::OsStrExt;
        let (_, ready) = self.paths(key)?;
        let marker = ready.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let watch = thread_watch(&self.dir)
            .map_err(|e| Error::io(format!("watching {}", self.dir.display()), e))?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if ready.exists() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            watch
                .wait_for_name(
                    marker.as_bytes(),
                    left.min(std::time::Duration::from_millis(50)),
                )
                .map_err(|e| Error::io(format!("watching {}", self.dir.display()), e))?;
        }
    }
}

/// This thread's inotify watch of `dir` (made on first use, kept).
fn thread_watch(dir: &Path) -> io::Result<std::rc::Rc<crate::mem::DirWatch>> {
    thread_local! {
        static WATCHES: std::cell::RefCell<std::collections::HashMap<PathBuf, std::rc::Rc<crate::mem::DirWatch>>> =
            Default::default();
    }
    WATCHES.with(|w| {
        if let Some(watch) = w.borrow().get(dir) {
            return Ok(watch.clone());
        }
        let watch = std::rc::Rc::new(crate::mem::DirWatch::new(dir)?);
        w.borrow_mut().insert(dir.to_path_buf(), watch.clone());
        Ok(watch)
    })
}

impl Deferrable for FileConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(FileKey {
            id: super::new_id(),
        }
        .into())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let id = key.decode::<FileKey>(KIND)?.id;
        self.write(id, &data).map(drop)
    }
}

impl FromConfig for FileConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        let o: FileOptions = config.options()?;
        if o.dir.as_os_str().is_empty() {
            return Err(Error::config(KIND, "option 'dir' is empty"));
        }
        Self::with_clear(o.dir, o.clear)
    }
}

/// The query keys of a `file://` URL.
const QUERY_KEYS: &[QueryKey<FileOptions>] = &crate::query_keys![FileOptions; clear: value::flag];

/// `file:///DIR` (an absolute path; `?clear=true` deletes it on `close`).
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let dir = url.rest();
    if !dir.starts_with('/') {
        return Err(url.error(Some(KIND), "a file URL needs an absolute path: file:///DIR"));
    }
    let mut o = FileOptions {
        dir: dir.into(),
        clear: false,
    };
    url.apply_query(KIND, &mut o, QUERY_KEYS)?;
    Ok(ConnectorConfig::new(KIND, o))
}
