//! The context each case gets ([`Ctx`]): the connector under test behind a
//! recorder of the keys it mints, and how to re-run the test binary as a
//! child process.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::data::pattern;
use super::{CHILD_ENV, Leftovers, RESULT_TAG};
use crate::connector::{
    Capabilities, Connector, ConnectorConfig, Deferrable, DynConnector, Payload,
};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::registry;
use crate::store::Store;

/// What each case gets: a fresh connector and how to re-run this test binary
/// as a child.
#[derive(Debug)]
pub struct Ctx {
    /// The connector under test, seen through a wrapper that forwards every
    /// method and records the keys it mints (to find leftovers).
    pub connector: DynConnector,
    /// Its declared capabilities.
    pub caps: Capabilities,
    /// Its configuration when the case started.
    pub config: ConnectorConfig,
    pub(super) recorder: Arc<Recorder>,
    child_test: String,
    pub(super) leftovers: Option<Leftovers>,
}

impl Ctx {
    /// A context over `connector`. `child_test` is the name (path without the
    /// crate) of a test in this binary that calls [`child_entry`](super::child_entry); the
    /// [`conformance_suite!`](crate::conformance_suite) macro generates it.
    pub fn new(connector: DynConnector, child_test: impl Into<String>) -> Ctx {
        let caps = connector.capabilities();
        let config = connector.config();
        let recorder = Arc::new(Recorder {
            inner: connector,
            minted: Mutex::new(Vec::new()),
        });
        Ctx {
            connector: recorder.clone(),
            caps,
            config,
            recorder,
            child_test: child_test.into(),
            leftovers: None,
        }
    }

    /// Also check, after `close`, that the namespace is gone (see [`Leftovers`]).
    pub fn with_leftovers(mut self, leftovers: Leftovers) -> Ctx {
        self.leftovers = Some(leftovers);
        self
    }

    pub(super) fn store(&self, case: &str) -> Store {
        Store::builder(
            format!("conformance-{case}-{}", uuid::Uuid::new_v4()),
            self.connector.clone(),
        )
        .cache_bytes(0)
        .build()
        .expect("build store")
    }

    /// A second instance on the same namespace, as another process builds it.
    /// Never closed by the cases (closing it may tear the namespace down):
    /// only dropped.
    pub(super) fn rebuild(&self) -> DynConnector {
        registry::connector_from_config(&self.config)
            .unwrap_or_else(|e| panic!("connector rebuilds from its config in this process: {e}"))
    }

    /// Re-run this test binary as a child with `task`; its result line and
    /// whether it exited successfully.
    pub(super) fn child(&self, task: &str) -> (String, bool) {
        let exe = std::env::current_exe().unwrap();
        let start = Instant::now();
        let out = Command::new(exe)
            .args([
                "--exact",
                &self.child_test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, task)
            .stdin(Stdio::null())
            .output()
            .expect("spawn child test process");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(RESULT_TAG).map(|(_, r)| r.trim().to_string()))
            .unwrap_or_else(|| {
                panic!(
                    "child printed no result (status {}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        eprintln!("child answered in {:?}: {line}", start.elapsed());
        (line, out.status.success())
    }

    /// A child process rebuilds the connector from its configuration, puts
    /// `objects` (`(length, seed)` of [`pattern`]s), drops its instance without
    /// `close`, prints the keys and exits. Returns the keys and the bytes.
    pub(super) fn child_put(&self, objects: &[(usize, u8)]) -> Vec<(Key, Bytes)> {
        self.child_store(objects, &[])
    }

    /// As [`Ctx::child_put`], then also stores `sets` through
    /// `Deferrable::new_key` and `set` (the connector must be deferrable).
    /// Returns the keys and the bytes, those of `objects` first.
    pub(super) fn child_store(
        &self,
        objects: &[(usize, u8)],
        sets: &[(usize, u8)],
    ) -> Vec<(Key, Bytes)> {
        let task = serde_json::json!({ "config": self.config, "objects": objects, "sets": sets });
        let (line, ok) = self.child(&format!("put:{task}"));
        assert!(ok, "child failed: {line}");
        let keys = line
            .strip_prefix("OK")
            .unwrap_or_else(|| panic!("child could not put: {line}"));
        let keys: Vec<Key> = keys
            .split_whitespace()
            .map(|h| Key::from_hex(h).expect("child printed a hex key"))
            .collect();
        assert_eq!(
            keys.len(),
            objects.len() + sets.len(),
            "one key per object: {line}"
        );
        keys.into_iter()
            .zip(
                objects
                    .iter()
                    .chain(sets)
                    .map(|&(len, seed)| pattern(len, seed)),
            )
            .collect()
    }
}

/// Forwards every method to the connector under test and records the keys it
/// mints.
#[derive(Debug)]
pub(super) struct Recorder {
    inner: DynConnector,
    pub(super) minted: Mutex<Vec<Key>>,
}

impl Recorder {
    fn record<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        self.minted
            .lock()
            .unwrap()
            .extend(keys.into_iter().cloned());
    }
}

#[warn(clippy::missing_trait_methods)]
impl Connector for Recorder {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn put(&self, data: Payload) -> Result<Key> {
        let k = self.inner.put(data)?;
        self.record([&k]);
        Ok(k)
    }
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        let keys = self.inner.put_batch(data)?;
        self.record(&keys);
        Ok(keys)
    }
    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_batch(keys)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<()> {
        self.inner.evict(key)
    }
    fn close(&self) -> Result<()> {
        self.inner.close()
    }
    fn config(&self) -> ConnectorConfig {
        self.inner.config()
    }
    fn key_to_string(&self, key: &Key) -> Result<String> {
        self.inner.key_to_string(key)
    }
    fn parse_key(&self, s: &str) -> Result<Key> {
        self.inner.parse_key(s)
    }
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        self.inner.wait_for(key, timeout)
    }
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        self.inner.as_deferrable().map(|_| self as &dyn Deferrable)
    }
}

impl Deferrable for Recorder {
    fn new_key(&self) -> Result<Key> {
        let d = self
            .inner
            .as_deferrable()
            .ok_or_else(|| Error::Unsupported {
                connector: self.inner.kind().into(),
                operation: "new_key",
            })?;
        let k = d.new_key()?;
        self.record([&k]);
        Ok(k)
    }
    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let d = self
            .inner
            .as_deferrable()
            .ok_or_else(|| Error::Unsupported {
                connector: self.inner.kind().into(),
                operation: "set",
            })?;
        d.set(key, data)
    }
}
