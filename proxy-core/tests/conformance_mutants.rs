//! The conformance suite catches the bugs it is meant to catch: a copy of a
//! small directory connector (the README's example) passes every case, and
//! each copy with one planted bug fails the case that checks that point.
//!
//! The planted bugs are those that once passed the whole suite: keys from a
//! per-instance counter, a second `close` failing, `kind()` differing from the
//! configuration's kind, objects deleted when their instance is dropped
//! despite `outlives_process`, a `Deferrable::set` that writes in place, a
//! per-instance get cache that other instances' evicts do not clear, a
//! declared `notify` that wakes `wait_for` only on the instance's own writes,
//! a `wait_for` that ignores its timeout, keys from a per-process counter
//! (for `put`, for `new_key`), temporary file names from a per-instance
//! counter, a `close` that keeps a file open, and a `set` that refuses to
//! replace an object (write-once), and a `put_batch` that writes the objects
//! before an oversized one.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use proxy_core::conformance::{CASES, Case, Ctx, child_entry, run_case};
use proxy_core::{
    Bytes, Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload,
    Result, registry,
};
use serde::{Deserialize, Serialize};

const KIND: &str = "mutant-dir";

/// One planted bug (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Bug {
    None,
    /// Key ids from a counter per instance (1, 2, 3, ...).
    CounterKeys,
    /// `close` fails when called again.
    SecondCloseFails,
    /// `kind()` is not the kind in `config()` nor the registered one.
    KindMismatch,
    /// Dropping an instance deletes the objects it stored.
    DeleteOnDrop,
    /// `Deferrable::set` writes the final file in place, part by part (as
    /// fast as the file system takes them).
    SetInPlace,
    /// `get` keeps what it read in a per-instance cache, which only this
    /// instance's `evict` clears.
    GetCache,
    /// Declares `notify`; `wait_for` sleeps on a per-instance condition
    /// variable that only this instance's `put` and `set` wake.
    NotifyOwnWritesOnly,
    /// `wait_for` polls until the object is there, whatever its timeout.
    IgnoresTimeout,
    /// `put` key ids from a counter per process.
    ProcessCounterPutKeys,
    /// `new_key` key ids from a counter per process.
    ProcessCounterNewKeys,
    /// Temporary files named from a counter per instance (`.tmp-1`, ...).
    TmpCounter,
    /// `get` keeps the last file it read open; `close` does not close it.
    KeepsHandles,
    /// Objects are write-once: `set` refuses a key that has an object.
    WriteOnce,
    /// `put_batch` writes the objects before an oversized one, then fails.
    PartialBatch,
}

/// The mutant's declared `max_object_size` (over the suite's 32 MiB sets).
const LIMIT: u64 = 64 << 20;

/// The per-process counter of the `ProcessCounter*` bugs.
static PROCESS_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize, Deserialize)]
struct DirKey {
    id: [u8; 16],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Options {
    dir: PathBuf,
    clear: bool,
    bug: Bug,
}

struct Mutant {
    opts: Options,
    counter: AtomicU64,
    tmp_counter: AtomicU64,
    closed: AtomicBool,
    stored: Mutex<Vec<PathBuf>>,
    cache: Mutex<HashMap<PathBuf, Bytes>>,
    writes: (Mutex<u64>, Condvar),
    last_read: Mutex<Option<fs::File>>,
}

impl fmt::Debug for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mutant({:?}, {})",
            self.opts.bug,
            self.opts.dir.display()
        )
    }
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Mutant {
    fn new(opts: Options) -> Result<Self> {
        fs::create_dir_all(&opts.dir).map_err(|e| Error::io("creating the directory", e))?;
        Ok(Mutant {
            opts,
            counter: AtomicU64::new(0),
            tmp_counter: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            stored: Mutex::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
            writes: (Mutex::new(0), Condvar::new()),
            last_read: Mutex::new(None),
        })
    }

    fn path(&self, key: &Key) -> Result<PathBuf> {
        let k: DirKey = key.decode(KIND)?;
        Ok(self
            .opts
            .dir
            .join(uuid::Uuid::from_bytes(k.id).simple().to_string()))
    }

    /// A new key; `for_put` tells `put` from `new_key`.
    fn mint(&self, for_put: bool) -> Key {
        let counter = match self.opts.bug {
            Bug::CounterKeys => Some(&self.counter),
            Bug::ProcessCounterPutKeys if for_put => Some(&PROCESS_COUNTER),
            Bug::ProcessCounterNewKeys if !for_put => Some(&PROCESS_COUNTER),
            _ => None,
        };
        let id = match counter {
            Some(counter) => {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                let mut id = [0; 16];
                id[..8].copy_from_slice(&n.to_le_bytes());
                id
            }
            None => *uuid::Uuid::new_v4().as_bytes(),
        };
        Key::encode(&DirKey { id })
    }

    /// Wake this instance's waiters (`NotifyOwnWritesOnly`).
    fn announce(&self) {
        *self.writes.0.lock().unwrap() += 1;
        self.writes.1.notify_all();
    }

    fn write(&self, path: &Path, data: &Payload, in_place: bool) -> Result<()> {
        if data.len() as u64 > LIMIT {
            return Err(Error::TooLarge {
                connector: KIND.into(),
                size: data.len() as u64,
                limit: LIMIT,
            });
        }
        let target = if in_place {
            path.to_path_buf()
        } else if self.opts.bug == Bug::TmpCounter {
            let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed) + 1;
            self.opts.dir.join(format!(".tmp-{n}"))
        } else {
            path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()))
        };
        let written = fs::File::create(&target).and_then(|mut f| {
            for part in data.parts() {
                f.write_all(part)?;
            }
            Ok(())
        });
        let done = if in_place {
            written
        } else {
            written.and_then(|()| fs::rename(&target, path))
        };
        done.map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        self.stored.lock().unwrap().push(path.to_path_buf());
        self.announce();
        Ok(())
    }
}

impl Drop for Mutant {
    fn drop(&mut self) {
        if self.opts.bug == Bug::DeleteOnDrop {
            for p in self.stored.lock().unwrap().drain(..) {
                let _ = fs::remove_file(p);
            }
        }
    }
}

impl Connector for Mutant {
    fn kind(&self) -> &'static str {
        if self.opts.bug == Bug::KindMismatch {
            "mutant-dir-v2"
        } else {
            KIND
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            cross_process: true,
            outlives_process: true,
            notify: self.opts.bug == Bug::NotifyOwnWritesOnly,
            max_object_size: Some(LIMIT),
            ..Capabilities::MINIMAL
        }
    }
    fn put(&self, data: Payload) -> Result<Key> {
        let key = self.mint(true);
        self.write(&self.path(&key)?, &data, false)?;
        Ok(key)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        if self.opts.bug != Bug::PartialBatch
            && let Some(d) = data.iter().find(|d| d.len() as u64 > LIMIT)
        {
            return Err(Error::TooLarge {
                connector: KIND.into(),
                size: d.len() as u64,
                limit: LIMIT,
            });
        }
        data.into_iter().map(|d| self.put(d)).collect()
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        if self.opts.bug == Bug::GetCache
            && let Some(b) = self.cache.lock().unwrap().get(&path)
        {
            return Ok(Some(b.clone()));
        }
        let read = |path: &Path| -> io::Result<Bytes> {
            let mut f = fs::File::open(path)?;
            let mut v = Vec::new();
            io::Read::read_to_end(&mut f, &mut v)?;
            // Kept for the next read (closed by `close`).
            *self.last_read.lock().unwrap() = Some(f);
            Ok(Bytes::from(v))
        };
        let got = not_found_is_none(read(&path)).map_err(|e| Error::io("reading", e))?;
        if let (Bug::GetCache, Some(b)) = (self.opts.bug, &got) {
            self.cache.lock().unwrap().insert(path, b.clone());
        }
        Ok(got)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.path(key)?.exists())
    }
    fn evict(&self, key: &Key) -> Result<()> {
        let path = self.path(key)?;
        self.cache.lock().unwrap().remove(&path);
        not_found_is_none(fs::remove_file(path))
            .map(drop)
            .map_err(|e| Error::io("removing", e))
    }
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) && self.opts.bug == Bug::SecondCloseFails {
            return Err(Error::permanent(KIND, "close", "already closed"));
        }
        if self.opts.bug != Bug::KeepsHandles {
            self.last_read.lock().unwrap().take();
        }
        if self.opts.clear {
            not_found_is_none(fs::remove_dir_all(&self.opts.dir))
                .map_err(|e| Error::io("deleting the directory", e))?;
        }
        Ok(())
    }
    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.opts)
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }
    fn wait_for(&self, key: &Key, timeout: Duration) -> Result<bool> {
        match self.opts.bug {
            Bug::IgnoresTimeout => loop {
                if self.exists(key)? {
                    return Ok(true);
                }
                std::thread::sleep(Duration::from_millis(1));
            },
            Bug::NotifyOwnWritesOnly => {
                let deadline = Instant::now() + timeout;
                let mut seen = self.writes.0.lock().unwrap();
                while !self.exists(key)? {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    seen = self.writes.1.wait_timeout(seen, left).unwrap().0;
                }
                Ok(true)
            }
            _ => proxy_core::connector::poll_exists(self, key, timeout),
        }
    }
}

impl Deferrable for Mutant {
    fn new_key(&self) -> Result<Key> {
        Ok(self.mint(false))
    }
    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        if self.opts.bug == Bug::WriteOnce && self.exists(key)? {
            return Err(Error::permanent(KIND, "set", "objects are write-once"));
        }
        self.write(&self.path(key)?, &data, self.opts.bug == Bug::SetInPlace)
    }
}

impl FromConfig for Mutant {
    const KIND: &'static str = KIND;
    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        Mutant::new(config.options()?)
    }
}

fn register() {
    registry::register_connector::<Mutant>();
}

/// Child side of the suite's cross-process cases (run only by them).
#[test]
#[ignore = "entry point of the conformance suite's child processes"]
fn conformance_child_entry() {
    child_entry(register);
}

fn left(cfg: &ConnectorConfig) -> Vec<String> {
    let dir = PathBuf::from(cfg.options["dir"].as_str().unwrap());
    match fs::read_dir(&dir) {
        Ok(entries) => std::iter::once(format!("directory {}", dir.display()))
            .chain(entries.map(|e| e.unwrap().path().display().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn ctx(bug: Bug) -> Ctx {
    register();
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("proxystore-mutant-{}", uuid::Uuid::new_v4()));
    let conn = Mutant::new(Options {
        dir,
        clear: true,
        bug,
    })
    .unwrap();
    Ctx::new(Arc::new(conn), "conformance_child_entry").with_leftovers(left)
}

/// The cases a copy with `bug` runs: every one that is not opt-in; with a
/// bug, not `large_object` either (256 MiB that no planted bug is about).
fn cases(bug: Bug) -> impl Iterator<Item = &'static Case> {
    CASES
        .iter()
        .filter(move |c| !c.opt_in && (bug == Bug::None || c.name != "large_object"))
}

/// The failures of [`cases`] on a copy with `bug`, by case name.
fn failures(bug: Bug) -> Vec<(&'static str, String)> {
    cases(bug)
        .filter_map(|c| run_case(c, ctx(bug)).err().map(|m| (c.name, m)))
        .collect()
}

/// `bug` fails case `by` with a message containing `says`.
fn assert_caught(bug: Bug, by: &str, says: &str) {
    let failed = failures(bug);
    let names: Vec<&str> = failed.iter().map(|f| f.0).collect();
    eprintln!("{bug:?} fails {names:?}");
    let (_, msg) = failed
        .iter()
        .find(|f| f.0 == by)
        .unwrap_or_else(|| panic!("{bug:?} is not caught by {by} (failed: {names:?})"));
    assert!(
        msg.contains(says),
        "{bug:?} fails {by}, but not for its bug: {msg}"
    );
}

#[test]
fn the_copy_without_a_bug_passes_every_case() {
    assert_eq!(failures(Bug::None), vec![]);
}

#[test]
fn per_instance_counter_keys_are_caught() {
    assert_caught(
        Bug::CounterKeys,
        "shared_namespace",
        "minted the same key twice",
    );
}

#[test]
fn a_failing_second_close_is_caught_by_every_case() {
    let failed = failures(Bug::SecondCloseFails);
    assert_eq!(
        failed.len(),
        cases(Bug::SecondCloseFails).count(),
        "{failed:?}"
    );
    for (name, msg) in failed {
        assert!(msg.contains("a second close failed"), "{name}: {msg}");
    }
}

#[test]
fn a_kind_that_differs_from_the_config_is_caught() {
    assert_caught(
        Bug::KindMismatch,
        "kind_and_config",
        "kind() differs from the kind in config()",
    );
}

#[test]
fn objects_deleted_on_drop_despite_outlives_process_are_caught() {
    assert_caught(
        Bug::DeleteOnDrop,
        "outlives_process",
        "object gone once the instance that stored it was dropped",
    );
}

/// Without any slowing down, every time: the case repeats until readers ran
/// during a `set`.
#[test]
fn a_set_that_writes_in_place_is_caught_every_time() {
    let case = proxy_core::conformance::case("deferrable_set_atomic").unwrap();
    for run in 0..20 {
        let err = run_case(case, ctx(Bug::SetInPlace))
            .expect_err(&format!("run {run}: an in-place set passed"));
        assert!(
            err.contains("a reader saw part of an object being set"),
            "run {run}: {err}"
        );
    }
}

#[test]
fn a_get_cache_that_outlives_other_instances_evicts_is_caught() {
    assert_caught(
        Bug::GetCache,
        "shared_namespace",
        "a cache outlived an evict on the namespace",
    );
}

#[test]
fn a_notify_woken_only_by_own_writes_is_caught() {
    assert_caught(
        Bug::NotifyOwnWritesOnly,
        "wait_for_wakes",
        "after another instance set the key (notify declared: true)",
    );
}

#[test]
fn a_wait_for_that_ignores_its_timeout_is_caught() {
    assert_caught(
        Bug::IgnoresTimeout,
        "wait_for_timeout",
        "ignores its timeout",
    );
}

#[test]
fn per_process_counter_put_keys_are_caught() {
    assert_caught(
        Bug::ProcessCounterPutKeys,
        "shared_namespace",
        "minted the same key twice: put in child process 1, then put in child process 2",
    );
}

#[test]
fn per_process_counter_new_keys_are_caught() {
    assert_caught(
        Bug::ProcessCounterNewKeys,
        "shared_namespace",
        "minted the same key twice: new_key in child process 1, then new_key in child process 2",
    );
}

#[test]
fn per_instance_temporary_names_are_caught() {
    assert_caught(
        Bug::TmpCounter,
        "concurrent_instances",
        "while the other instances put too",
    );
}

#[test]
fn a_close_that_keeps_files_open_is_caught() {
    assert_caught(
        Bug::KeepsHandles,
        "put_get_roundtrip",
        "close() left 1 file descriptors of this process open into the namespace",
    );
}

#[test]
fn a_write_once_set_is_caught() {
    assert_caught(
        Bug::WriteOnce,
        "set_replaces",
        "set through the minting instance of a key minted by put",
    );
}

#[test]
fn a_partial_put_batch_is_caught() {
    assert_caught(
        Bug::PartialBatch,
        "too_large",
        "put_batch refused with TooLarge wrote the objects before the oversized one",
    );
}
