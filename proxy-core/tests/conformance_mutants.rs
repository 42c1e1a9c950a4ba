//! The conformance suite catches the bugs it is meant to catch: a copy of a
//! small directory connector (the README's example) passes every case, and
//! each copy with one planted bug fails the case that checks that point.
//!
//! The planted bugs are those that once passed the whole suite: keys from a
//! per-instance counter, a second `close` failing, `kind()` differing from the
//! configuration's kind, objects deleted when their instance is dropped
//! despite `outlives_process`, and a `Deferrable::set` that writes in place.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// `Deferrable::set` writes the final file in place, part by part.
    SetInPlace,
}

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
    closed: AtomicBool,
    stored: Mutex<Vec<PathBuf>>,
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
            closed: AtomicBool::new(false),
            stored: Mutex::new(Vec::new()),
        })
    }

    fn path(&self, key: &Key) -> Result<PathBuf> {
        let k: DirKey = key.decode(KIND)?;
        Ok(self
            .opts
            .dir
            .join(uuid::Uuid::from_bytes(k.id).simple().to_string()))
    }

    fn mint(&self) -> Key {
        let id = if self.opts.bug == Bug::CounterKeys {
            let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
            let mut id = [0; 16];
            id[..8].copy_from_slice(&n.to_le_bytes());
            id
        } else {
            *uuid::Uuid::new_v4().as_bytes()
        };
        Key::encode(&DirKey { id })
    }

    fn write(&self, path: &Path, data: &Payload, in_place: bool) -> Result<()> {
        let target = if in_place {
            path.to_path_buf()
        } else {
            path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()))
        };
        let written = fs::File::create(&target).and_then(|mut f| {
            for part in data.parts() {
                f.write_all(part)?;
                if in_place {
                    // Parts arrive over time (as from a socket): the window in
                    // which the file is partial is then long enough for the
                    // suite's pollers to run even on a loaded machine.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
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
            ..Capabilities::MINIMAL
        }
    }
    fn put(&self, data: Payload) -> Result<Key> {
        let key = self.mint();
        self.write(&self.path(&key)?, &data, false)?;
        Ok(key)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        data.into_iter().map(|d| self.put(d)).collect()
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        not_found_is_none(fs::read(&path))
            .map(|v| v.map(Bytes::from))
            .map_err(|e| Error::io("reading", e))
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.path(key)?.exists())
    }
    fn evict(&self, key: &Key) -> Result<()> {
        not_found_is_none(fs::remove_file(self.path(key)?))
            .map(drop)
            .map_err(|e| Error::io("removing", e))
    }
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) && self.opts.bug == Bug::SecondCloseFails {
            return Err(Error::connector(KIND, "close", false, "already closed"));
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
}

impl Deferrable for Mutant {
    fn new_key(&self) -> Result<Key> {
        Ok(self.mint())
    }
    fn set(&self, key: &Key, data: Payload) -> Result<()> {
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

#[test]
fn a_set_that_writes_in_place_is_caught() {
    assert_caught(
        Bug::SetInPlace,
        "deferrable_set_atomic",
        "a reader saw part of an object being set",
    );
}
