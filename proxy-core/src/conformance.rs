//! The connector conformance suite: the behaviour every [`Connector`] must
//! show, run unchanged by each connector's tests (in this repository and
//! outside it).
//!
//! # Use
//!
//! Through [`conformance_suite!`](crate::conformance_suite), which expands to
//! one `#[test]` per case in the current module:
//!
//! ```ignore
//! fn setup() -> MyConnector { MyConnector::new(/* a fresh namespace */).unwrap() }
//! proxy_core::conformance_suite!(setup = setup, register = my_connector::register);
//! // optional: what is left of a case's namespace after close (empty when torn down)
//! // proxy_core::conformance_suite!(setup = setup, register = ..., leftovers = list_left);
//! // optional: every case ignored with a reason (a suite that needs hardware a host
//! // may lack, run with `-- --ignored` where it has it)
//! // proxy_core::conformance_suite!(setup = setup, register = ..., ignore = "needs ...");
//! ```
//!
//! - `setup` runs once per case (cases run in parallel threads) and returns a
//!   connector over a *fresh namespace* (directory, key prefix, server). Make
//!   it one that `close` tears down (e.g. a `clear` option), or each case
//!   leaves an empty namespace behind.
//! - `register` makes every connector kind the configuration needs
//!   rebuildable (it calls
//!   [`registry::register_connector`]).
//!   It runs in the test process and in child processes: the cross-process
//!   cases re-run the test binary as a child (the generated
//!   `conformance_child_entry`, an ignored test that only such a child runs)
//!   which rebuilds the connector from its configuration.
//! - `leftovers` (optional), `fn(&ConnectorConfig) -> Vec<String>`: what
//!   remains of the namespace after the case closed its connector (files,
//!   server keys); the case fails unless it is empty.
//!
//! Every case ends the same way (see [`run_case`]): `close()` twice (both
//! `Ok`), no file descriptor of the process left open at or under an absolute
//! path of the configuration (Linux), then every operation once more (each must return within two minutes
//! and behave as [`Connector::close`] documents), then no object stored
//! through the connector during the case may remain.
//!
//! Cases write real data: `large_object` 256 MiB, `deferrable_set_atomic`
//! 2 (up to 40) x 32 MiB, `concurrent_instances` 36 MiB; the opt-in
//! `huge_object` (ignored unless run with `cargo test huge_object --
//! --ignored`) writes one object over 4 GiB, for 32-bit length framing.
//!
//! Differences between connectors come from [`Capabilities`] and
//! [`Connector::as_deferrable`] and are checked, not skipped: e.g. a connector
//! without `cross_process` must make the child's resolve fail with a clear
//! error (not hang, not panic).
//!
//! # Cases as functions
//!
//! Each case is a public function of a [`Ctx`] that panics on failure, listed
//! in [`CASES`]; [`run_case`] runs one with the end-of-case checks and returns
//! the failure as an `Err`. This is how a test shows that a deliberately broken
//! connector is caught:
//!
//! ```ignore
//! let ctx = Ctx::new(Arc::new(Broken::new()), "conformance_child_entry");
//! assert!(run_case(case("shared_namespace").unwrap(), ctx).is_err());
//! ```
//!
//! The suite is not part of the stable API.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::connector::{
    Capabilities, Connector, ConnectorConfig, Deferrable, DynConnector, Payload,
};
use crate::connectors::file::FileKey;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::proxy::Proxy;
use crate::registry;
use crate::store::Store;

/// Environment variable carrying a task to the child process.
pub const CHILD_ENV: &str = "PROXYSTORE_CONFORMANCE_CHILD";
const RESULT_TAG: &str = "@@proxystore-conformance:";
/// How long the operations after `close` may take together.
const AFTER_CLOSE_DEADLINE: Duration = Duration::from_secs(120);

/// What remains of a namespace after its connector was closed (see the module
/// docs): file names, server keys. Empty when the namespace is torn down.
pub type Leftovers = fn(&ConnectorConfig) -> Vec<String>;

/// One case of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Its name (also the name of its `#[test]`).
    pub name: &'static str,
    /// The case: panics on failure.
    pub run: fn(&Ctx),
    /// Opt-in (an ignored test): too heavy for every run.
    pub opt_in: bool,
}

/// The case called `name`.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

macro_rules! case_table {
    (cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        /// Every case, in the order the suite lists them.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($name), run: $name, opt_in: false },)*
            $(Case { name: stringify!($opt), run: $opt, opt_in: true },)*
        ];
    };
}
crate::__conformance_for_each_case!(case_table);

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
    recorder: Arc<Recorder>,
    child_test: String,
    leftovers: Option<Leftovers>,
}

impl Ctx {
    /// A context over `connector`. `child_test` is the name (path without the
    /// crate) of a test in this binary that calls [`child_entry`]; the
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

    fn store(&self, case: &str) -> Store {
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
    fn rebuild(&self) -> DynConnector {
        registry::connector_from_config(&self.config)
            .unwrap_or_else(|e| panic!("connector rebuilds from its config in this process: {e}"))
    }

    /// Re-run this test binary as a child with `task`; its result line and
    /// whether it exited successfully.
    fn child(&self, task: &str) -> (String, bool) {
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
    fn child_put(&self, objects: &[(usize, u8)]) -> Vec<(Key, Bytes)> {
        self.child_store(objects, &[])
    }

    /// As [`Ctx::child_put`], then also stores `sets` through
    /// `Deferrable::new_key` and `set` (the connector must be deferrable).
    /// Returns the keys and the bytes, those of `objects` first.
    fn child_store(&self, objects: &[(usize, u8)], sets: &[(usize, u8)]) -> Vec<(Key, Bytes)> {
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
struct Recorder {
    inner: DynConnector,
    minted: Mutex<Vec<Key>>,
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

/// Run one case on `ctx`, then the end-of-case checks (`close` twice, every
/// operation after `close`, no leftovers). `Err` says what failed. When the
/// case itself fails, the connector is still closed (to tear the namespace
/// down) but the later checks are skipped.
pub fn run_case(case: &Case, ctx: Ctx) -> std::result::Result<(), String> {
    let run = catch_unwind(AssertUnwindSafe(|| (case.run)(&ctx)));
    match run {
        Err(p) => {
            let _ = ctx.connector.close();
            let _ = ctx.connector.close();
            Err(format!("case {}: {}", case.name, panic_message(&*p)))
        }
        Ok(()) => catch_unwind(AssertUnwindSafe(|| finish(&ctx)))
            .unwrap_or_else(|p| Err(panic_message(&*p)))
            .map_err(|m| format!("case {} (end-of-case checks): {m}", case.name)),
    }
}

/// [`run_case`] for a `#[test]`: panics with the failure.
pub fn run_test(name: &str, make_ctx: impl FnOnce() -> Ctx) {
    let case = case(name).unwrap_or_else(|| panic!("no conformance case named {name}"));
    if let Err(m) = run_case(case, make_ctx()) {
        panic!("{m}");
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".into())
}

fn finish(ctx: &Ctx) -> std::result::Result<(), String> {
    let c = ctx.connector.clone();
    c.close().map_err(|e| format!("close failed: {e}"))?;
    c.close()
        .map_err(|e| format!("a second close failed (close must be idempotent): {e}"))?;
    let open = open_files_under(&ctx.config);
    if !open.is_empty() {
        return Err(format!(
            "close() left {} file descriptors of this process open into the namespace's \
             paths: {open:?}",
            open.len()
        ));
    }

    // Every operation after close, on its own thread: a hang is a failure.
    let (tx, rx) = mpsc::channel();
    let (config, caps) = (ctx.config.clone(), ctx.caps);
    let probe = c.clone();
    let prober = std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| after_close(&probe, &config, caps)));
        // Release the connector before answering: the last handle's drop may
        // stop a server, which must not race with the test process's exit.
        drop(probe);
        let _ = tx.send(r.map_err(|p| panic_message(&*p)));
    });
    let answer = rx.recv_timeout(AFTER_CLOSE_DEADLINE);
    if answer.is_ok() {
        let _ = prober.join();
    }
    match answer {
        Ok(Ok(())) => {}
        Ok(Err(m)) => return Err(format!("after close: {m}")),
        Err(_) => {
            return Err(format!(
                "operations after close did not return within {AFTER_CLOSE_DEADLINE:?}"
            ));
        }
    }

    // Nothing the case stored is left.
    let minted = ctx.recorder.minted.lock().unwrap().clone();
    let left = match stored_of(&*c, &minted) {
        Ok(left) => left,
        // A closed connector may refuse: ask a fresh instance on the namespace.
        Err(_) => match registry::connector_from_config(&ctx.config)
            .and_then(|fresh| stored_of(&*fresh, &minted))
        {
            Ok(left) => left,
            // Objects that do not outlive their instance may have gone with
            // it (a closed owner stops the server that held them).
            Err(_) if !ctx.caps.outlives_process => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "a fresh instance cannot tell whether the case left objects: {e}"
                ));
            }
        },
    };
    if !left.is_empty() {
        return Err(format!(
            "{} of the {} objects stored during the case are left after it evicted them and \
             closed its connector: {left:?}",
            left.len(),
            minted.len()
        ));
    }
    if let Some(hook) = ctx.leftovers {
        let left = hook(&ctx.config);
        if !left.is_empty() {
            return Err(format!(
                "the namespace is not torn down after close: {left:?}"
            ));
        }
    }
    Ok(())
}

/// The absolute paths among a configuration's option values (a directory, a
/// socket file) that belong to it: at least two components deep, and not a
/// directory that many namespaces share (the temporary directories).
fn config_paths(v: &serde_json::Value, out: &mut Vec<std::path::PathBuf>) {
    use std::path::Path;
    match v {
        serde_json::Value::String(s) if s.starts_with('/') => {
            let p = Path::new(s);
            let shared = [std::env::temp_dir(), "/tmp".into(), "/dev/shm".into()];
            if p.components().count() > 2 && !shared.iter().any(|d| d == p) {
                out.push(p.to_path_buf());
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| config_paths(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| config_paths(x, out)),
        _ => {}
    }
}

/// The files at or under the paths of a configuration (see [`config_paths`]),
/// for the cases that check that nothing was written (empty for connectors
/// whose namespace is not in the file system: those rely on the `leftovers`
/// hook).
fn files_under(config: &ConnectorConfig) -> std::collections::BTreeSet<String> {
    fn walk(p: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        match std::fs::read_dir(p) {
            Ok(entries) => {
                for e in entries.flatten() {
                    walk(&e.path(), out);
                }
            }
            Err(_) if p.is_file() => {
                out.insert(p.display().to_string());
            }
            Err(_) => {}
        }
    }
    let mut paths = Vec::new();
    config_paths(&config.options, &mut paths);
    let mut out = std::collections::BTreeSet::new();
    for p in paths {
        walk(&p, &mut out);
    }
    out
}

/// The file descriptors of this process (`/proc/self/fd`) open on a file at or
/// under a path of the configuration (see [`config_paths`]), deleted or not.
/// Empty where `/proc` is not there.
fn open_files_under(config: &ConnectorConfig) -> Vec<String> {
    let mut paths = Vec::new();
    config_paths(&config.options, &mut paths);
    if paths.is_empty() {
        return Vec::new();
    }
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            let file = std::path::Path::new(t.strip_suffix(" (deleted)").unwrap_or(&t));
            paths
                .iter()
                .any(|p| file.starts_with(p))
                .then(|| t.into_owned())
        })
        .collect()
}

fn stored_of(c: &dyn Connector, keys: &[Key]) -> Result<Vec<Key>> {
    let mut left = Vec::new();
    for k in keys {
        if c.exists(k)? {
            left.push(k.clone());
        }
    }
    Ok(left)
}

/// The operations after `close`, as [`Connector::close`] documents them.
fn after_close(c: &DynConnector, config: &ConnectorConfig, caps: Capabilities) {
    assert_eq!(c.config(), *config, "config() changed by close");
    assert_eq!(c.capabilities(), caps, "capabilities() changed by close");
    assert_eq!(c.kind(), config.kind, "kind() after close");
    let refused = |op: &str, e: &Error| {
        assert!(
            !e.is_temporary(),
            "{op} after close failed with a temporary error, which asks callers to retry \
             a closed connector forever: {e}"
        );
    };
    let data = pattern(1000, 0xc1);
    let mut keys = Vec::new();
    match c.put(Payload::from(data.clone())) {
        Ok(k) => {
            match c.get(&k) {
                Ok(got) => assert_eq!(
                    got.as_ref(),
                    Some(&data),
                    "put after close returned a key, get does not return its object"
                ),
                Err(e) => refused("get", &e),
            }
            keys.push(k);
        }
        Err(e) => refused("put", &e),
    }
    match c.put_batch(vec![Payload::from(data.clone())]) {
        Ok(k) => keys.extend(k),
        Err(e) => refused("put_batch", &e),
    }
    let never = Key::from_bytes(vec![0x5a; 16]);
    match c.get(&never) {
        Ok(None) | Err(Error::InvalidKey { .. }) => {}
        Ok(Some(b)) => panic!(
            "get after close of a key never stored returned {} bytes",
            b.len()
        ),
        Err(e) => refused("get", &e),
    }
    match c.get_batch(&keys) {
        Ok(got) => {
            assert_eq!(
                got.len(),
                keys.len(),
                "get_batch after close: one result per key"
            );
            for g in got {
                assert_eq!(g.as_ref(), Some(&data), "get_batch after close");
            }
        }
        Err(e) => refused("get_batch", &e),
    }
    for k in &keys {
        match c.exists(k) {
            Ok(e) => assert!(e, "exists after close of an object put after close"),
            Err(e) => refused("exists", &e),
        }
        match c.evict(k) {
            Ok(()) => {}
            Err(e) => refused("evict", &e),
        }
        if let Ok(text) = c.key_to_string(k) {
            assert_eq!(
                c.parse_key(&text).ok().as_ref(),
                Some(k),
                "parse_key after close"
            );
        }
    }
    if let Some(d) = c.as_deferrable() {
        match d.new_key() {
            Ok(k) => match d.set(&k, Payload::from(data.clone())) {
                Ok(()) => {
                    if let Ok(got) = c.get(&k) {
                        assert_eq!(got.as_ref(), Some(&data), "get after set after close");
                    }
                    if let Err(e) = c.evict(&k) {
                        refused("evict", &e);
                    }
                }
                Err(e) => refused("set", &e),
            },
            Err(e) => refused("new_key", &e),
        }
    }
}

/// `len` bytes that depend on `seed` and on the position: 4 KiB blocks of a
/// byte pattern, each starting with its own block number (so no two blocks
/// are equal), made with block copies (fast in unoptimised test builds).
pub fn pattern(len: usize, seed: u8) -> Bytes {
    const BLOCK: usize = 4096;
    let base: Vec<u8> = (0..BLOCK)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let mut v = Vec::with_capacity(len);
    let mut block = 0u64;
    while v.len() < len {
        let start = v.len();
        let n = BLOCK.min(len - start);
        v.extend_from_slice(&base[..n]);
        let tag = (block ^ (u64::from(seed) << 56)).to_le_bytes();
        let t = n.min(8);
        v[start..start + t].copy_from_slice(&tag[..t]);
        block += 1;
    }
    v.into()
}

/// FNV-1a over 8-byte words (to compare objects across processes).
fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for &x in chunks.remainder() {
        h = (h ^ x as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A payload of `total` bytes made of `chunk` repeated (no allocation of its
/// own): with a chunk length that does not divide 2^31 or 2^32, bytes
/// wrapped at those lengths differ from the right ones.
pub fn repeated(chunk: &Bytes, total: u64) -> Payload {
    let mut p = Payload::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        p.push(chunk.slice(..n as usize));
        left -= n;
    }
    p
}

/// Panics unless `got` is `total` bytes of `chunk` repeated (see
/// [`repeated`]), naming the first chunk that differs.
pub fn assert_repeated(got: &[u8], chunk: &[u8], total: u64, what: &str) {
    assert_eq!(got.len() as u64, total, "{what}: length");
    for (i, part) in got.chunks(chunk.len()).enumerate() {
        assert!(
            part == &chunk[..part.len()],
            "{what}: bytes differ in chunk {i} (from byte {})",
            i * chunk.len()
        );
    }
}

/// `Ok(v)` or `InvalidKey` (`None`); any other error fails the case.
fn ok_or_invalid<T>(r: Result<T>, what: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::InvalidKey { .. }) => None,
        Err(e) => panic!("{what}: {e} (expected InvalidKey or nothing found)"),
    }
}

/// A key this namespace holds no object for: every operation finds nothing or
/// says `InvalidKey`, never returns bytes, and disturbs nothing.
fn check_unknown_key(c: &DynConnector, key: &Key, what: &str) {
    if let Some(got) = ok_or_invalid(c.get(key), &format!("get of {what}")) {
        assert!(
            got.is_none(),
            "get of {what} {key:?} returned {} bytes of some object",
            got.map_or(0, |b| b.len())
        );
    }
    if let Some(e) = ok_or_invalid(c.exists(key), &format!("exists of {what}")) {
        assert!(!e, "exists of {what} {key:?} is true");
    }
    ok_or_invalid(c.evict(key), &format!("evict of {what}"));
    if let Some(got) = ok_or_invalid(
        c.get_batch(&[key.clone(), key.clone()]),
        &format!("get_batch of {what}"),
    ) {
        assert_eq!(got, vec![None, None], "get_batch of {what} {key:?}");
    }
}

/// put → get returns the same bytes; a multi-part payload is stored as its
/// concatenation; exists is true.
pub fn put_get_roundtrip(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(10_000, 1);
    let k = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&data[..]));
    assert!(c.exists(&k).unwrap());
    let parts = Payload::new()
        .with(&b"BS\n"[..])
        .with(data.slice(..100))
        .with(data.slice(100..));
    let k2 = c.put(parts).unwrap();
    let got = c.get(&k2).unwrap().unwrap();
    assert_eq!(&got[..3], b"BS\n");
    assert_eq!(&got[3..], &data[..]);
    assert_ne!(k, k2, "every put mints a new key");
    c.evict(&k).unwrap();
    c.evict(&k2).unwrap();
}

/// A key whose object was never stored or was evicted gets `None`, exists is
/// false, and evicting it again is fine.
pub fn missing_key(ctx: &Ctx) {
    let c = &ctx.connector;
    let k = c.put(Payload::from(pattern(100, 2))).unwrap();
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    assert!(!c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get_batch(std::slice::from_ref(&k)).unwrap(), vec![None]);
    if let Some(d) = c.as_deferrable() {
        let fresh = d.new_key().unwrap();
        assert_eq!(c.get(&fresh).unwrap(), None);
        assert!(!c.exists(&fresh).unwrap());
        d.set(&fresh, Payload::from(pattern(10, 3))).unwrap();
        assert_eq!(c.get(&fresh).unwrap(), Some(pattern(10, 3)));
        c.evict(&fresh).unwrap();
    }
}

/// Batches keep order, mix in missing keys, and match single gets.
pub fn batch_order(ctx: &Ctx) {
    let c = &ctx.connector;
    let items: Vec<Bytes> = (0..20).map(|i| pattern(100 + i * 37, i as u8)).collect();
    let keys = c
        .put_batch(items.iter().cloned().map(Payload::from).collect())
        .unwrap();
    assert_eq!(keys.len(), items.len());
    let gone = keys[5].clone();
    c.evict(&gone).unwrap();
    let mut order: Vec<usize> = (0..20).rev().collect();
    order.swap(3, 11);
    let ask: Vec<Key> = order.iter().map(|&i| keys[i].clone()).collect();
    let got = c.get_batch(&ask).unwrap();
    assert_eq!(got.len(), ask.len());
    for (j, &i) in order.iter().enumerate() {
        if i == 5 {
            assert_eq!(got[j], None);
        } else {
            assert_eq!(got[j].as_ref(), Some(&items[i]), "item {i}");
        }
    }
    assert!(c.put_batch(vec![]).unwrap().is_empty());
    assert!(c.get_batch(&[]).unwrap().is_empty());
    for k in &keys {
        c.evict(k).unwrap();
    }
}

/// The empty object round-trips (and is not confused with a missing one).
pub fn empty_object(ctx: &Ctx) {
    let c = &ctx.connector;
    let k = c.put(Payload::new()).unwrap();
    assert_eq!(c.get(&k).unwrap(), Some(Bytes::new()));
    assert!(c.exists(&k).unwrap());
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
}

/// A 256 MiB object round-trips intact (or, if the connector declares a
/// smaller `max_object_size`, is refused with `TooLarge` and nothing is stored).
pub fn large_object(ctx: &Ctx) {
    const SIZE: usize = 256 << 20;
    let c = &ctx.connector;
    let data = pattern(SIZE, 9);
    match ctx.caps.max_object_size {
        Some(limit) if (SIZE as u64) > limit => {
            let err = c.put(Payload::from(data)).unwrap_err();
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        }
        _ => {
            let k = c.put(Payload::from(data.clone())).unwrap();
            let got = c.get(&k).unwrap().expect("large object stored");
            assert_eq!(got.len(), SIZE);
            assert!(got == data, "large object read back with other bytes");
            drop(got);
            c.evict(&k).unwrap();
        }
    }
}

/// Many threads put, get, check and evict at once; nothing is lost or mixed up.
pub fn concurrent_threads(ctx: &Ctx) {
    let threads = 8;
    let per = 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = &ctx.connector;
            s.spawn(move || {
                let mut kept = Vec::new();
                for i in 0..per {
                    let data = pattern(64 + (i * 13 + t * 7) % 5000, (t * per + i) as u8);
                    let k = c.put(Payload::from(data.clone())).unwrap();
                    assert_eq!(c.get(&k).unwrap().as_ref(), Some(&data));
                    if i % 2 == 0 {
                        c.evict(&k).unwrap();
                        assert_eq!(c.get(&k).unwrap(), None);
                    } else {
                        kept.push((k, data));
                    }
                }
                for (k, data) in &kept {
                    assert_eq!(c.get(k).unwrap().as_ref(), Some(data), "object lost");
                    c.evict(k).unwrap();
                }
            });
        }
    });
}

/// Keys survive serde (postcard and JSON); the configuration round-trips
/// (JSON, TOML, postcard) and rebuilds a connector that reads the same objects
/// (where the connector is reachable from a rebuilt instance at all).
pub fn key_and_config_serde(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(777, 4);
    let k = c.put(Payload::from(data.clone())).unwrap();
    let k_pc: Key = postcard::from_bytes(&postcard::to_allocvec(&k).unwrap()).unwrap();
    let k_js: Key = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
    assert_eq!(k_pc, k);
    assert_eq!(k_js, k);
    let text = c.key_to_string(&k).unwrap();
    assert_eq!(
        c.parse_key(&text).unwrap(),
        k,
        "text form {text:?} round-trips"
    );
    assert!(c.parse_key("not a key at all").is_err());
    assert_eq!(c.get(&k_pc).unwrap(), Some(data.clone()));

    let cfg = c.config();
    let via_json: ConnectorConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    let via_pc: ConnectorConfig =
        postcard::from_bytes(&postcard::to_allocvec(&cfg).unwrap()).unwrap();
    assert_eq!(via_json, cfg);
    assert_eq!(via_pc, cfg);
    let store_cfg = crate::StoreConfig::new("conformance-toml", cfg.clone());
    let toml = store_cfg.to_toml_string().unwrap();
    assert_eq!(
        crate::StoreConfig::from_toml_str(&toml).unwrap(),
        store_cfg,
        "TOML:\n{toml}"
    );

    let rebuilt = registry::connector_from_config(&cfg)
        .expect("connector rebuilds from its config in this process");
    assert_eq!(rebuilt.kind(), c.kind());
    assert_eq!(rebuilt.config(), cfg, "config of the rebuilt connector");
    assert_eq!(rebuilt.get(&k).unwrap(), Some(data));
    c.evict(&k).unwrap();
}

/// Malformed keys are clear errors on every operation (never a panic), and
/// nothing else in the store is disturbed.
pub fn bad_keys(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(1000, 5);
    let good = c.put(Payload::from(data.clone())).unwrap();
    let bad = [
        Key::from_bytes(Vec::new()),
        Key::from_bytes(vec![0xff; 3]),
        Key::from_bytes(vec![0x42; 300]),
    ];
    for k in &bad {
        assert!(
            matches!(c.get(k), Err(Error::InvalidKey { .. })),
            "get {k:?}"
        );
        assert!(
            matches!(c.exists(k), Err(Error::InvalidKey { .. })),
            "exists {k:?}"
        );
        assert!(
            matches!(c.evict(k), Err(Error::InvalidKey { .. })),
            "evict {k:?}"
        );
        assert!(
            c.get_batch(&[good.clone(), k.clone()]).is_err(),
            "get_batch {k:?}"
        );
    }
    assert_eq!(
        c.get(&good).unwrap(),
        Some(data),
        "a bad key disturbed another object"
    );
    c.evict(&good).unwrap();
}

/// Through a [`Store`]: a value that is not a valid encoded object is an error
/// naming the key; a key for a deleted object is `MissingKey` when proxied.
pub fn store_bad_objects(ctx: &Ctx) {
    let store = ctx.store("bad-objects");
    let junk = store
        .put_encoded(Payload::from(Bytes::from_static(b"\x00\x01garbage")))
        .unwrap();
    let err = store.get::<Bytes>(&junk).unwrap_err();
    assert!(matches!(err, Error::Decode { key: Some(_), .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&store.connector().key_to_string(&junk).unwrap()),
        "{err}"
    );
    let good = store.put(&"kept".to_string()).unwrap();
    assert!(
        store.get::<Vec<f64>>(&good).is_err(),
        "wrong type is an error"
    );
    let p: Proxy<String> = store.proxy_from_key(junk.clone(), false);
    assert!(p.resolve().is_err());
    store.evict(&junk).unwrap();
    let gone: Proxy<String> = store.proxy_from_key(junk, false);
    assert!(matches!(gone.resolve(), Err(Error::MissingKey { .. })));
    assert_eq!(store.get::<String>(&good).unwrap().as_deref(), Some("kept"));
    store.evict(&good).unwrap();
}

/// A proxy made here is resolved in another OS process (this test binary run
/// again as a child). With `cross_process`, the child gets the same bytes;
/// without it, the child reports a clear error.
pub fn cross_process_resolve(ctx: &Ctx) {
    let store = ctx.store("xproc");
    let data = pattern(1 << 20, 6);
    let p = store.proxy(data.clone()).unwrap();
    let wire = p.to_bytes().unwrap();
    eprintln!(
        "serialized proxy ({} connector): {} bytes",
        store.connector().kind(),
        wire.len()
    );
    let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
    let (line, ok) = ctx.child(&format!("resolve:{hex}"));
    if ctx.caps.cross_process {
        assert_eq!(
            line,
            format!("OK len={} sum={}", data.len(), checksum(&data))
        );
        assert!(ok, "child failed");
    } else {
        assert!(line.starts_with("ERR "), "{line}");
        assert!(line.len() > 10, "error message is empty");
    }
    store.evict(p.key()).unwrap();
}

/// A store over the connector: typed put/get, proxies that resolve from a
/// deserialized copy in this process, batch proxies, evict-on-resolve.
pub fn store_and_proxy(ctx: &Ctx) {
    let store = ctx.store("proxy");
    let v: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
    let p = store.proxy(v.clone()).unwrap();
    assert!(p.is_resolved());
    let q: Proxy<Vec<f64>> = Proxy::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert!(!q.is_resolved());
    assert_eq!(*q, v);
    let ps = store
        .proxy_batch(
            vec!["a".to_string(), "b".to_string()],
            crate::ProxyOptions::default()
                .evict(true)
                .populate_target(false),
        )
        .unwrap();
    assert_eq!(ps[1].resolve().unwrap(), "b");
    assert!(!store.exists(ps[1].key()).unwrap(), "evicted on resolve");
    assert_eq!(ps[0].resolve().unwrap(), "a");
    let keys: Vec<Key> = ps.iter().map(|p| p.key().clone()).collect();
    assert_eq!(store.get_batch::<String>(&keys).unwrap(), vec![None, None]);
    store.evict(p.key()).unwrap();
    assert!(matches!(
        store
            .proxy_from_key::<Vec<f64>>(p.key().clone(), false)
            .resolve(),
        Err(Error::MissingKey { .. })
    ));
}

/// `get_batch` with repeated keys, repeated missing keys, and a mix: every
/// position gets its own key's object.
pub fn get_batch_duplicates(ctx: &Ctx) {
    let c = &ctx.connector;
    let a = pattern(300, 31);
    let b = pattern(5000, 32);
    let ka = c.put(Payload::from(a.clone())).unwrap();
    let kb = c.put(Payload::from(b.clone())).unwrap();
    let km = c.put(Payload::from(pattern(10, 33))).unwrap();
    c.evict(&km).unwrap();
    let ask = [&ka, &kb, &ka, &km, &ka, &kb, &km].map(Key::clone);
    let want = [Some(&a), Some(&b), Some(&a), None, Some(&a), Some(&b), None];
    let got = c.get_batch(&ask).unwrap();
    assert_eq!(got.len(), ask.len(), "one result per key");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.as_ref(), w, "position {i} of a batch with repeated keys");
    }
    assert_eq!(
        c.get_batch(&[ka.clone(), ka.clone()]).unwrap(),
        vec![Some(a.clone()), Some(a)]
    );
    assert_eq!(
        c.get_batch(&[km.clone(), km]).unwrap(),
        vec![None, None],
        "a missing key twice"
    );
    c.evict(&ka).unwrap();
    c.evict(&kb).unwrap();
}

/// Objects over `max_object_size` are refused with `TooLarge` and nothing is
/// written (`put`, `put_batch` with a small object first, `Deferrable::set`).
/// For a namespace in the file system (an absolute path among the options),
/// no new file appears there after the refused `put_batch`; elsewhere the
/// suite's `leftovers` hook finds what a partial batch left.
/// The payload repeats one 1 MiB buffer: nothing that large is allocated.
pub fn too_large(ctx: &Ctx) {
    let c = &ctx.connector;
    let Some(limit) = ctx.caps.max_object_size else {
        return;
    };
    assert!(
        limit < usize::MAX as u64,
        "a limit of {limit} bytes is no limit"
    );
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let over = repeated(&chunk, limit + 1);
    let is_too_large = |r: Result<()>, op: &str| match r {
        // The size may include the connector's own framing.
        Err(Error::TooLarge { size, .. }) => assert!(
            size > limit,
            "{op}: TooLarge names {size} bytes, not over the limit of {limit}"
        ),
        Err(e) => panic!("{op} of {} bytes over a limit of {limit}: {e}", limit + 1),
        Ok(()) => panic!(
            "{op} of {} bytes accepted over the declared limit of {limit}",
            limit + 1
        ),
    };
    let r = c.put(over.clone()).map(|k| {
        let _ = c.evict(&k);
    });
    is_too_large(r, "put");
    let before = files_under(&ctx.config);
    let r = c
        .put_batch(vec![Payload::from(pattern(10, 41)), over.clone()])
        .map(|ks| {
            for k in &ks {
                let _ = c.evict(k);
            }
        });
    is_too_large(r, "put_batch");
    let new: Vec<String> = files_under(&ctx.config)
        .difference(&before)
        .cloned()
        .collect();
    assert!(
        new.is_empty(),
        "put_batch refused with TooLarge wrote the objects before the oversized one: new \
         files in the namespace {new:?}"
    );
    if let Some(d) = c.as_deferrable() {
        let k = d.new_key().unwrap();
        is_too_large(d.set(&k, over), "set");
        assert!(!c.exists(&k).unwrap(), "a refused set left an object");
        assert_eq!(c.get(&k).unwrap(), None, "a refused set left an object");
    }
}

/// `kind() == config().kind ==` the kind registered for it, also for an
/// instance rebuilt from the configuration.
pub fn kind_and_config(ctx: &Ctx) {
    let c = &ctx.connector;
    let kind = c.kind();
    assert_eq!(
        c.config().kind,
        kind,
        "kind() differs from the kind in config()"
    );
    assert!(
        registry::registered_kinds().contains(&kind),
        "kind() is {kind:?}, which no registered connector type has (registered: {:?})",
        registry::registered_kinds()
    );
    let rebuilt = ctx.rebuild();
    assert_eq!(rebuilt.kind(), kind, "kind() of the rebuilt connector");
    assert_eq!(
        rebuilt.config().kind,
        kind,
        "config().kind of the rebuilt connector"
    );
    assert_eq!(
        rebuilt.as_deferrable().is_some(),
        c.as_deferrable().is_some(),
        "a rebuilt connector is deferrable exactly when the original is"
    );
}

/// A well-formed key that was never stored (a stored key with its last byte
/// changed; a fresh deferrable key): `None` or `InvalidKey`, never bytes, and
/// nothing else disturbed.
pub fn never_stored_key(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(2000, 21);
    let k = c.put(Payload::from(data.clone())).unwrap();
    for flip in [0x01u8, 0x80] {
        let mut b = k.as_bytes().to_vec();
        if let Some(last) = b.last_mut() {
            *last ^= flip;
        }
        check_unknown_key(c, &Key::from_bytes(b), "a never-stored key");
    }
    if let Some(d) = c.as_deferrable() {
        let fresh = d.new_key().unwrap();
        check_unknown_key(c, &fresh, "a fresh deferrable key");
        assert_eq!(
            c.get_batch(&[fresh.clone(), k.clone()]).unwrap(),
            vec![None, Some(data.clone())]
        );
    }
    assert_eq!(
        c.get(&k).unwrap(),
        Some(data),
        "the stored object is intact"
    );
    c.evict(&k).unwrap();
}

/// Keys of other connectors (the 16-byte UUID keys of local, file and Redis,
/// one with an object behind it in a live local connector; a multi connector's
/// key; keys of unknown formats): `InvalidKey` or `None`, never bytes, and
/// nothing else disturbed.
pub fn foreign_keys(ctx: &Ctx) {
    let c = &ctx.connector;
    let data = pattern(3000, 51);
    let own = c.put(Payload::from(data.clone())).unwrap();
    let uuid_key = Key::from_bytes(vec![0x5a; 16]);
    let elsewhere = crate::LocalConnector::new();
    elsewhere
        .set(&uuid_key, Payload::from(pattern(3000, 52)))
        .unwrap();
    let foreign = [
        ("a local connector's key", uuid_key.clone()),
        (
            "a file connector's key",
            Key::from(FileKey { id: [0xa5; 16] }),
        ),
        (
            "a multi connector's key",
            Key::encode(&("small".to_string(), uuid_key.clone())),
        ),
        (
            "a key of an unknown connector",
            Key::encode(&("s3", "bucket/object-7".to_string(), 42u64, 7u32)),
        ),
        ("a counter key", Key::encode(&7u64)),
    ];
    for (what, k) in &foreign {
        check_unknown_key(c, k, what);
    }
    assert_eq!(
        elsewhere.get(&uuid_key).unwrap(),
        Some(pattern(3000, 52)),
        "the other connector's object"
    );
    assert_eq!(c.get(&own).unwrap(), Some(data), "the own object is intact");
    c.evict(&own).unwrap();
}

/// Two instances on one namespace (the original and one rebuilt from its
/// `config()`, as another process builds it), and, with `cross_process`, two
/// child processes one after the other (a per-process counter starts again in
/// each): interleaved puts (and deferrable keys minted by one instance or
/// process and set by it or another) mint distinct keys and all read back
/// intact through both instances; once evicted through either instance, no
/// instance finds them (`get`, `get_batch`, `exists`: no cache outlives an
/// evict on the namespace).
pub fn shared_namespace(ctx: &Ctx) {
    let c = &ctx.connector;
    let other = ctx.rebuild();
    // (key, bytes, who minted the key)
    let mut objects: Vec<(Key, Bytes, String)> = Vec::new();
    let mut n = 0usize;
    let mut next = || {
        n += 1;
        pattern(200 + n * 61, n as u8)
    };
    let deferrable = c.as_deferrable().is_some();
    for round in 0..4 {
        for (who, conn) in [("original", c), ("rebuilt", &other)] {
            let d = next();
            let k = conn.put(Payload::from(d.clone())).unwrap();
            objects.push((k, d, format!("put through the {who} instance")));
            let batch = [next(), next()];
            let keys = conn
                .put_batch(batch.iter().cloned().map(Payload::from).collect())
                .unwrap();
            objects.extend(
                keys.into_iter()
                    .zip(batch)
                    .map(|(k, d)| (k, d, format!("put_batch through the {who} instance"))),
            );
        }
        if (round == 1 || round == 2) && ctx.caps.cross_process {
            let seed = 200 + 10 * round as u8;
            let sets: &[(usize, u8)] = if deferrable {
                &[(3101, 0), (3102, 1)]
            } else {
                &[]
            };
            let sets: Vec<(usize, u8)> = sets.iter().map(|&(l, s)| (l, seed + 5 + s)).collect();
            let puts = [(3001, seed), (3002, seed + 1), (3003, seed + 2)];
            let theirs = ctx.child_store(&puts, &sets);
            objects.extend(theirs.into_iter().enumerate().map(|(i, (k, d))| {
                let how = if i < puts.len() { "put" } else { "new_key" };
                (k, d, format!("{how} in child process {round}"))
            }));
        }
    }
    if let (Some(d1), Some(d2)) = (c.as_deferrable(), other.as_deferrable()) {
        let (k1, k2) = (d1.new_key().unwrap(), d2.new_key().unwrap());
        let (v1, v2) = (next(), next());
        d2.set(&k1, Payload::from(v1.clone())).unwrap();
        d1.set(&k2, Payload::from(v2.clone())).unwrap();
        objects.push((k1, v1, "new_key of the original instance".into()));
        objects.push((k2, v2, "new_key of the rebuilt instance".into()));
    }
    for (i, (k, _, who)) in objects.iter().enumerate() {
        if let Some((_, _, first)) = objects[..i].iter().find(|o| o.0 == *k) {
            panic!(
                "instances on one namespace minted the same key twice: {first}, then {who} \
                 ({} keys minted)",
                objects.len()
            );
        }
    }
    let all: Vec<Key> = objects.iter().map(|(k, ..)| k.clone()).collect();
    for (who, conn) in [("original", c), ("rebuilt", &other)] {
        for (i, (k, d, _)) in objects.iter().enumerate() {
            let got = conn.get(k).unwrap();
            assert!(
                got.as_ref() == Some(d),
                "object {i} read through the {who} instance: {} (another instance on the \
                 namespace overwrote or lost it)",
                match &got {
                    None => "missing".to_string(),
                    Some(g) => format!("{} bytes, not the {} stored", g.len(), d.len()),
                }
            );
        }
        let got = conn.get_batch(&all).unwrap();
        for (i, (g, (_, d, _))) in got.iter().zip(&objects).enumerate() {
            assert_eq!(
                g.as_ref(),
                Some(d),
                "get_batch through the {who}: object {i}"
            );
        }
    }
    for (i, (k, ..)) in objects.iter().enumerate() {
        if i % 2 == 0 { c } else { &other }.evict(k).unwrap();
    }
    for (who, conn) in [("original", c), ("rebuilt", &other)] {
        for (i, (k, ..)) in objects.iter().enumerate() {
            let by = if i % 2 == 0 { "original" } else { "rebuilt" };
            let got = conn.get(k).unwrap();
            assert!(
                got.is_none(),
                "object {i}, evicted through the {by} instance, still read through the {who} \
                 instance ({} bytes): a cache outlived an evict on the namespace",
                got.map_or(0, |g| g.len())
            );
            assert!(
                !conn.exists(k).unwrap(),
                "evicted, exists through the {who}"
            );
        }
        assert!(
            conn.get_batch(&all).unwrap().iter().all(Option::is_none),
            "get_batch through the {who} instance found evicted objects: a cache outlived \
             an evict on the namespace"
        );
    }
}

/// `wait_for` of a key with no object (an evicted one) returns `Ok(false)`
/// once its timeout has passed: not before, and not long after (no answer 20 s
/// past the timeout fails the case); of a stored key, `Ok(true)` at once
/// (well within a long timeout).
pub fn wait_for_timeout(ctx: &Ctx) {
    const TIMEOUT: Duration = Duration::from_millis(300);
    const LATE: Duration = Duration::from_secs(20);
    let c = &ctx.connector;
    let data = pattern(500, 81);
    let k = c.put(Payload::from(data)).unwrap();
    let t0 = Instant::now();
    assert!(
        c.wait_for(&k, Duration::from_secs(60)).unwrap(),
        "wait_for of a stored key"
    );
    assert!(
        t0.elapsed() < LATE,
        "wait_for of a stored key took {:?}",
        t0.elapsed()
    );
    c.evict(&k).unwrap();
    // On its own thread: a wait_for that ignores its timeout never returns.
    let (tx, rx) = mpsc::channel();
    let waiter = c.clone();
    let key = k.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = waiter.wait_for(&key, TIMEOUT);
        let _ = tx.send((r, t0.elapsed()));
    });
    match rx.recv_timeout(TIMEOUT + LATE) {
        Err(_) => panic!(
            "wait_for with a timeout of {TIMEOUT:?} on a key with no object did not return \
             within {:?}: it ignores its timeout",
            TIMEOUT + LATE
        ),
        Ok((r, took)) => {
            assert!(
                !r.unwrap(),
                "wait_for of an evicted key returned true (after {took:?})"
            );
            // A server may round its own deadline to milliseconds.
            assert!(
                took + Duration::from_millis(20) >= TIMEOUT,
                "wait_for returned false after {took:?}, before its timeout of {TIMEOUT:?}"
            );
            eprintln!("wait_for of an evicted key: false after {took:?} (timeout {TIMEOUT:?})");
        }
    }
}

/// Deferrable: `wait_for` (with a long timeout) returns `Ok(true)` soon after
/// the key is set, by the waiting instance and by another instance on the
/// namespace (a notifying connector must be woken by writes it did not make;
/// a polling one wakes within its poll interval).
pub fn wait_for_wakes(ctx: &Ctx) {
    const TIMEOUT: Duration = Duration::from_secs(10);
    const PROMPT: Duration = Duration::from_secs(3);
    let c = &ctx.connector;
    let Some(_) = c.as_deferrable() else {
        return;
    };
    let other = ctx.rebuild();
    for (who, setter) in [("the waiting", c), ("another", &other)] {
        let d = setter
            .as_deferrable()
            .expect("rebuilt instance is deferrable");
        let k = ctx.connector.as_deferrable().unwrap().new_key().unwrap();
        let data = pattern(700, 82);
        let (tx, rx) = mpsc::channel();
        let waiter = c.clone();
        let key = k.clone();
        std::thread::spawn(move || {
            let r = waiter.wait_for(&key, TIMEOUT);
            let _ = tx.send((r, Instant::now()));
        });
        // Let the waiter start waiting.
        std::thread::sleep(Duration::from_millis(200));
        d.set(&k, Payload::from(data.clone())).unwrap();
        let set_at = Instant::now();
        let (r, woke) = rx
            .recv_timeout(TIMEOUT + Duration::from_secs(20))
            .expect("wait_for returned at all");
        assert!(
            r.unwrap(),
            "wait_for returned false although {who} instance set the key"
        );
        let late = woke.saturating_duration_since(set_at);
        assert!(
            late < PROMPT,
            "wait_for woke {late:?} after {who} instance set the key (notify declared: {}): \
             not woken by that write",
            ctx.caps.notify
        );
        eprintln!("set by {who} instance: wait_for woke {late:?} later");
        assert_eq!(c.get(&k).unwrap(), Some(data));
        c.evict(&k).unwrap();
    }
}

/// Deferrable: `set` replaces the object under a key minted by `put` (as
/// `RefMutProxy::set` and `RemoteMut::set` of proxy-patterns do) and under a
/// key already `set`, through the instance that minted it and through another
/// one; every instance then reads the new object whole.
pub fn set_replaces(ctx: &Ctx) {
    let c = &ctx.connector;
    let Some(d) = c.as_deferrable() else {
        return;
    };
    let other = ctx.rebuild();
    let od = other
        .as_deferrable()
        .expect("rebuilt instance is deferrable");
    let put_key = c.put(Payload::from(pattern(3000, 91))).unwrap();
    let new_key = d.new_key().unwrap();
    d.set(&new_key, Payload::from(pattern(3000, 92))).unwrap();
    for (what, k) in [("put", &put_key), ("new_key", &new_key)] {
        for (i, (who, setter)) in [("minting", d), ("another", od)].into_iter().enumerate() {
            let v = pattern(5000 + 1000 * i, 93 + i as u8);
            setter.set(k, Payload::from(v.clone())).unwrap_or_else(|e| {
                panic!("set through the {who} instance of a key minted by {what}: {e}")
            });
            for (reader, conn) in [("original", c), ("rebuilt", &other)] {
                let got = conn.get(k).unwrap();
                assert!(
                    got.as_ref() == Some(&v),
                    "after set through the {who} instance of a key minted by {what}, get \
                     through the {reader} instance: {:?} bytes, not the {} set",
                    got.map(|g| g.len()),
                    v.len()
                );
            }
            assert_eq!(
                c.get_batch(std::slice::from_ref(k)).unwrap(),
                vec![Some(v)],
                "get_batch after set"
            );
        }
    }
    c.evict(&put_key).unwrap();
    c.evict(&new_key).unwrap();
}

/// Three instances on one namespace (the original and two rebuilt) put at
/// the same moment, round after round (a barrier before each put): every put
/// succeeds and every object reads back intact (no two writers share a
/// temporary name or slot).
pub fn concurrent_instances(ctx: &Ctx) {
    const ROUNDS: usize = 24;
    const SIZE: usize = 512 << 10;
    let instances = [ctx.connector.clone(), ctx.rebuild(), ctx.rebuild()];
    let barrier = std::sync::Barrier::new(instances.len());
    let seed = |i: usize, round: usize| (i * ROUNDS + round) as u8;
    let keys: Vec<Vec<Key>> = std::thread::scope(|s| {
        let threads: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(i, conn)| {
                let barrier = &barrier;
                // Every round reaches the barrier, whatever failed before.
                s.spawn(move || -> Vec<Result<Key>> {
                    (0..ROUNDS)
                        .map(|round| {
                            let data = pattern(SIZE + i, seed(i, round));
                            barrier.wait();
                            conn.put(Payload::from(data))
                        })
                        .collect()
                })
            })
            .collect();
        let results: Vec<Vec<Result<Key>>> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        let failed: Vec<String> = results
            .iter()
            .enumerate()
            .flat_map(|(i, rs)| {
                rs.iter().enumerate().filter_map(move |(round, r)| {
                    r.as_ref()
                        .err()
                        .map(|e| format!("instance {i}, round {round}: {e}"))
                })
            })
            .collect();
        if !failed.is_empty() {
            // Evict what was stored before failing.
            for k in results.iter().flatten().filter_map(|r| r.as_ref().ok()) {
                let _ = ctx.connector.evict(k);
            }
            panic!(
                "{} puts failed while the other instances put too: {failed:?}",
                failed.len()
            );
        }
        results
            .into_iter()
            .map(|rs| rs.into_iter().map(|r| r.unwrap()).collect())
            .collect()
    });
    let c = &ctx.connector;
    for (i, ks) in keys.iter().enumerate() {
        for (round, k) in ks.iter().enumerate() {
            let got = c.get(k).unwrap();
            assert!(
                got.as_ref() == Some(&pattern(SIZE + i, seed(i, round))),
                "object put through instance {i} in round {round}, while the other instances \
                 put too: {}",
                match &got {
                    None => "missing".to_string(),
                    Some(g) => format!("{} bytes, other than those stored", g.len()),
                }
            );
        }
    }
    for k in keys.iter().flatten() {
        c.evict(k).unwrap();
    }
}

/// With `outlives_process`: an object put through a rebuilt instance that is
/// then dropped, and objects put by a child process that then exits (with
/// `cross_process`), read back intact. Without it, nothing is promised.
pub fn outlives_process(ctx: &Ctx) {
    if !ctx.caps.outlives_process {
        return;
    }
    let c = &ctx.connector;
    let other = ctx.rebuild();
    let d = pattern(4321, 61);
    let mut objects = vec![(other.put(Payload::from(d.clone())).unwrap(), d)];
    if let Some(def) = other.as_deferrable() {
        let k = def.new_key().unwrap();
        let v = pattern(1234, 62);
        def.set(&k, Payload::from(v.clone())).unwrap();
        objects.push((k, v));
    }
    drop(other);
    for (k, d) in &objects {
        assert_eq!(
            c.get(k).unwrap().as_ref(),
            Some(d),
            "object gone once the instance that stored it was dropped"
        );
    }
    if ctx.caps.cross_process {
        let theirs = ctx.child_put(&[(5000, 71), (1 << 20, 72)]);
        for (k, d) in &theirs {
            let got = c.get(k).unwrap();
            assert!(
                got.as_ref() == Some(d),
                "object put by a child process that has exited: {:?} bytes, {} stored",
                got.map(|g| g.len()),
                d.len()
            );
        }
        objects.extend(theirs);
    }
    for (k, _) in &objects {
        c.evict(k).unwrap();
    }
}

/// `Deferrable::set` of 32 MiB while two threads poll `exists` and `get` on
/// the key: they see nothing, then the whole object, never part of it; once
/// `exists` is true, `get` returns it. At least two rounds, and more (up to 40
/// rounds or 3 s) until at least 8 polls in all fell wholly inside the last
/// quarter of a `set` (began after three quarters of its time, ended before
/// it returned: a setter held up before it started writing is writing by
/// then): a reader that never ran during a `set` proves nothing. Connectors
/// whose `set` is too quick to be caught inside end at the bound.
pub fn deferrable_set_atomic(ctx: &Ctx) {
    const SIZE: usize = 32 << 20;
    const PART: usize = 1 << 20;
    const INSIDE: usize = 8;
    const MIN_ROUNDS: usize = 2;
    const MAX_ROUNDS: usize = 40;
    const BUDGET: Duration = Duration::from_secs(3);
    let c = &ctx.connector;
    let Some(d) = c.as_deferrable() else {
        return;
    };
    let data = pattern(SIZE, 13);
    // In 1 MiB parts, as an encoder hands them over.
    let payload = (0..SIZE / PART).fold(Payload::new(), |p, i| {
        p.with(data.slice(i * PART..(i + 1) * PART))
    });
    let started = Instant::now();
    let mut inside = 0usize;
    let mut round = 0usize;
    loop {
        let key = d.new_key().unwrap();
        let stop = AtomicBool::new(false);
        let polls = AtomicUsize::new(0);
        let t0 = Instant::now();
        // When each poll began and ended.
        let (times, set_start, set_end) = std::thread::scope(|s| {
            let pollers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut times = Vec::new();
                        loop {
                            let set_done = stop.load(Ordering::Acquire);
                            let begin = Instant::now();
                            let exists = c.exists(&key).unwrap();
                            let got = c.get(&key).unwrap();
                            times.push((begin, Instant::now()));
                            polls.fetch_add(1, Ordering::AcqRel);
                            match got {
                                None => {
                                    assert!(
                                        !exists,
                                        "exists was true, then get found nothing (round {round})"
                                    );
                                    assert!(!set_done, "set returned, get finds nothing");
                                }
                                Some(b) => {
                                    assert_eq!(
                                        b.len(),
                                        SIZE,
                                        "a reader saw part of an object being set (round {round})"
                                    );
                                    assert!(
                                        b == data,
                                        "a reader saw wrong bytes of an object being set"
                                    );
                                }
                            }
                            if set_done {
                                break times;
                            }
                        }
                    })
                })
                .collect();
            while polls.load(Ordering::Acquire) < 2 && !pollers.iter().any(|p| p.is_finished()) {
                std::thread::yield_now();
            }
            let set_start = Instant::now();
            let set = d.set(&key, payload.clone());
            let set_end = Instant::now();
            stop.store(true, Ordering::Release);
            let mut times = Vec::new();
            for p in pollers {
                match p.join() {
                    Ok(t) => times.extend(t),
                    Err(panic) => std::panic::resume_unwind(panic), // the poller's own message
                }
            }
            set.unwrap();
            (times, set_start, set_end)
        });
        // Polls in the last quarter of the set: a setter that was not
        // scheduled at first has started writing by then.
        let last_quarter = set_end - (set_end - set_start) / 4;
        let during = times
            .iter()
            .filter(|&&(b, e)| b >= last_quarter && e <= set_end)
            .count();
        inside += during;
        eprintln!(
            "round {round}: {} polls, {during} inside the last quarter of the set of {SIZE} \
             bytes ({:?}), in {:?}",
            times.len(),
            set_end - set_start,
            t0.elapsed()
        );
        assert_eq!(c.get(&key).unwrap().map(|b| b.len()), Some(SIZE));
        c.evict(&key).unwrap();
        round += 1;
        if round >= MIN_ROUNDS
            && (inside >= INSIDE || round >= MAX_ROUNDS || started.elapsed() > BUDGET)
        {
            break;
        }
    }
    eprintln!("{round} rounds, {inside} polls inside the last quarter of a set");
}

/// Opt-in (an ignored test: `cargo test huge_object -- --ignored`): one object
/// of 4 GiB + 4099 bytes, for 32-bit length framing. Read back with the same
/// length and checksum, or refused with `TooLarge` (required when it is over
/// the declared `max_object_size`; allowed otherwise, for a server's memory
/// limit).
pub fn huge_object(ctx: &Ctx) {
    const SIZE: u64 = (4 << 30) + 4099;
    let c = &ctx.connector;
    // A chunk length that does not divide 4 GiB: data wrapped at 2^32 differs.
    let chunk = pattern((1 << 20) + 1, 17);
    let payload = repeated(&chunk, SIZE);
    let t0 = Instant::now();
    match c.put(payload) {
        Err(Error::TooLarge { size, limit, .. }) => {
            assert!(size >= SIZE, "TooLarge names {size} bytes for {SIZE}");
            eprintln!("refused: {SIZE} bytes ({size} with framing) over a limit of {limit}");
        }
        Err(e) => panic!("put of {SIZE} bytes: {e}"),
        Ok(k) => {
            assert!(
                ctx.caps.max_object_size.is_none_or(|l| l >= SIZE),
                "accepted over the declared max_object_size"
            );
            eprintln!("put {SIZE} bytes in {:?}", t0.elapsed());
            let got = c.get(&k).unwrap().expect("huge object stored");
            assert_repeated(&got, &chunk, SIZE, "a > 4 GiB object");
            drop(got);
            c.evict(&k).unwrap();
        }
    }
}

/// The child side of the cross-process cases: does nothing unless
/// [`CHILD_ENV`] is set. Tasks: `resolve:<hex proxy>` (resolve it, print the
/// length and checksum) and `put:<json>` (rebuild the connector from
/// `config`, put `objects`, store `sets` through `new_key` and `set`, drop it
/// without `close`, print the keys).
pub fn child_entry(register: fn()) {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    register();
    let result = match task.split_once(':') {
        Some(("resolve", hex)) => child_resolve(hex),
        Some(("put", json)) => child_put(json),
        _ => Err(Error::decode(format!(
            "unknown conformance child task {task:?}"
        ))),
    };
    let line = result.unwrap_or_else(|e| format!("ERR {e}"));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{RESULT_TAG} {line}").unwrap();
    out.flush().unwrap();
}

fn child_resolve(hex: &str) -> Result<String> {
    let bytes = Key::from_hex(hex)?;
    let p = Proxy::<Bytes>::from_bytes(bytes.as_bytes())?;
    let b = p.resolve()?;
    Ok(format!("OK len={} sum={}", b.len(), checksum(b)))
}

fn child_put(json: &str) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Task {
        config: ConnectorConfig,
        objects: Vec<(usize, u8)>,
        #[serde(default)]
        sets: Vec<(usize, u8)>,
    }
    let t: Task = serde_json::from_str(json).map_err(Error::decode)?;
    let conn = registry::connector_from_config(&t.config)?;
    let mut line = String::from("OK");
    for (len, seed) in t.objects {
        let k = conn.put(Payload::from(pattern(len, seed)))?;
        line.push(' ');
        line.push_str(&k.to_string());
    }
    if !t.sets.is_empty() {
        let d = conn.as_deferrable().ok_or_else(|| Error::Unsupported {
            connector: conn.kind().into(),
            operation: "new_key",
        })?;
        for (len, seed) in t.sets {
            let k = d.new_key()?;
            d.set(&k, Payload::from(pattern(len, seed)))?;
            line.push(' ');
            line.push_str(&k.to_string());
        }
    }
    drop(conn);
    Ok(line)
}

/// Calls `$cb! { cases: ...; opt_in: ... }` with the names of every case: the
/// one list behind [`CASES`] and the tests [`conformance_suite!`](crate::conformance_suite) generates.
#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_for_each_case {
    (@list [$($cb:tt)*] [$($prefix:tt)*]) => {
        $($cb)*! {
            $($prefix)*
            cases:
                put_get_roundtrip,
                missing_key,
                batch_order,
                get_batch_duplicates,
                empty_object,
                large_object,
                too_large,
                concurrent_threads,
                key_and_config_serde,
                kind_and_config,
                bad_keys,
                never_stored_key,
                foreign_keys,
                shared_namespace,
                concurrent_instances,
                wait_for_timeout,
                wait_for_wakes,
                outlives_process,
                deferrable_set_atomic,
                set_replaces,
                store_bad_objects,
                store_and_proxy,
                cross_process_resolve;
            opt_in:
                huge_object,
        }
    };
    // `[callback] prefix...`: the prefix goes before `cases:`.
    ([$($cb:tt)*] $($prefix:tt)*) => {
        $crate::__conformance_for_each_case!(@list [$($cb)*] [$($prefix)*]);
    };
    ($($cb:tt)*) => {
        $crate::__conformance_for_each_case!(@list [$($cb)*] []);
    };
}

/// One `#[test]` per case (used by [`conformance_suite!`](crate::conformance_suite)).
#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_cases {
    // Every case ignored with `reason` (a suite that needs what a host may lack).
    (ignore = $reason:literal; cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $reason]
            fn $name() {
                $crate::conformance::run_test(stringify!($name), __conformance_ctx);
            }
        )*
        $(
            #[test]
            #[ignore = "opt-in conformance case: run with `cargo test <name> -- --ignored`"]
            fn $opt() {
                $crate::conformance::run_test(stringify!($opt), __conformance_ctx);
            }
        )*
    };
    (cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::run_test(stringify!($name), __conformance_ctx);
            }
        )*
        $(
            #[test]
            #[ignore = "opt-in conformance case: run with `cargo test <name> -- --ignored`"]
            fn $opt() {
                $crate::conformance::run_test(stringify!($opt), __conformance_ctx);
            }
        )*
    };
}

/// Expand the conformance suite into `#[test]`s in the current module.
///
/// `setup` is a function (or closure) returning a connector (owned or
/// `Arc<dyn Connector>`) over a fresh namespace, called once per case;
/// `register` is a `fn()` registering every connector kind a child process
/// needs; the optional `leftovers` is a
/// [`Leftovers`](crate::conformance::Leftovers) hook; the optional `ignore`
/// (a string literal) marks every case `#[ignore = ...]` with that reason, for
/// a suite that needs what not every host has (an RDMA device), run with
/// `-- --ignored` where it is. See the [module docs](crate::conformance).
///
/// It also generates `conformance_child_entry`, an ignored test that only the
/// suite's child processes run.
#[macro_export]
macro_rules! conformance_suite {
    (setup = $setup:expr, register = $register:expr $(, leftovers = $leftovers:expr)?
     $(, ignore = $reason:literal)? $(,)?) => {
        fn __conformance_ctx() -> $crate::conformance::Ctx {
            ($register)();
            let path = module_path!();
            let child = match path.split_once("::") {
                Some((_, rest)) => format!("{rest}::conformance_child_entry"),
                None => "conformance_child_entry".to_string(),
            };
            $crate::conformance::Ctx::new($crate::IntoDynConnector::into_dyn(($setup)()), child)
                $(.with_leftovers($leftovers))?
        }

        /// Child side of the cross-process cases (run only by them).
        #[test]
        #[ignore = "entry point of the conformance suite's child processes"]
        fn conformance_child_entry() {
            $crate::conformance::child_entry($register);
        }

        $crate::__conformance_for_each_case!([$crate::__conformance_cases] $(ignore = $reason;)?);
    };
}
