//! The [`Connector`] trait: the contract every storage backend implements.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::Key;

/// An encoded object to store: a short scatter-gather list of [`Bytes`].
///
/// Encoding an object produces a small header (`BS\n`, `NP\n` + `.npy` header, ...)
/// followed by the body, which for byte-like objects is the caller's own buffer:
/// connectors write the parts where they belong (a file, registered memory, a
/// socket) without first concatenating them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload {
    parts: Vec<Bytes>,
    len: usize,
}

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a part (empty parts are dropped).
    pub fn push(&mut self, part: impl Into<Bytes>) {
        let part = part.into();
        if !part.is_empty() {
            self.len += part.len();
            self.parts.push(part);
        }
    }

    /// Builder form of [`Payload::push`].
    pub fn with(mut self, part: impl Into<Bytes>) -> Self {
        self.push(part);
        self
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// One contiguous buffer: free when there is at most one part, a copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            // Joined in an aligned buffer, so that the payload after a
            // padded codec header stays aligned (the local connector keeps this).
            _ => {
                let mut buf = crate::mem::AlignedBuf::zeroed(self.len);
                self.copy_to_slice(buf.as_mut_slice());
                buf.into_bytes()
            }
        }
    }

    /// Copy all parts into `dst`, which must be exactly [`Payload::len`] bytes long.
    pub fn copy_to_slice(&self, dst: &mut [u8]) {
        assert_eq!(
            dst.len(),
            self.len,
            "destination length must equal payload length"
        );
        let mut off = 0;
        for p in &self.parts {
            dst[off..off + p.len()].copy_from_slice(p);
            off += p.len();
        }
    }

    /// Write all parts to `w` with vectored writes (`writev` for files and
    /// sockets: one system call for the header and the body), up to
    /// [`Payload::MAX_SLICES`] parts per call, continuing after partial writes
    /// and retrying interrupted ones. A writer that accepts nothing is
    /// [`io::ErrorKind::WriteZero`](std::io::ErrorKind::WriteZero).
    pub fn write_all_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        use std::io::{ErrorKind, IoSlice};
        // The first part not fully written, and how much of it is.
        let (mut part, mut done) = (0, 0);
        let mut slices = [IoSlice::new(&[]); Self::MAX_SLICES];
        while part < self.parts.len() {
            let rest = &self.parts[part..];
            let n = rest.len().min(Self::MAX_SLICES);
            slices[0] = IoSlice::new(&rest[0][done..]);
            for (slot, p) in slices[1..n].iter_mut().zip(&rest[1..n]) {
                *slot = IoSlice::new(p);
            }
            let mut wrote = match w.write_vectored(&slices[..n]) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        ErrorKind::WriteZero,
                        format!(
                            "the writer accepted nothing after {} of {} payload bytes",
                            self.parts[..part].iter().map(Bytes::len).sum::<usize>() + done,
                            self.len
                        ),
                    ));
                }
                Ok(k) => k,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // Advance past what was written (parts are never empty).
            while wrote > 0 {
                let left = self.parts[part].len() - done;
                if wrote >= left {
                    wrote -= left;
                    part += 1;
                    done = 0;
                } else {
                    done += wrote;
                    wrote = 0;
                }
            }
        }
        Ok(())
    }

    /// Most parts handed to one vectored write (well below `IOV_MAX`).
    pub const MAX_SLICES: usize = 64;
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Payload({} bytes in {} parts)",
            self.len,
            self.parts.len()
        )
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload::new().with(b)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload::new().with(v)
    }
}

impl From<&'static [u8]> for Payload {
    fn from(v: &'static [u8]) -> Self {
        Payload::new().with(Bytes::from_static(v))
    }
}

/// What a connector can do, declared once and checked by [`Store`](crate::Store)
/// and by the conformance suite (`proxy_core::conformance`, feature `conformance`) instead of being discovered
/// by failure.
///
/// Each field says what counts, what it promises, and which conformance case
/// checks it. A capability that is declared must hold for every instance a
/// configuration can produce; when in doubt, leave it out.
///
/// Whether a connector is *deferrable* is not a field: it is
/// [`Connector::as_deferrable`] returning `Some`, the one source of truth (a
/// field could disagree with the method).
///
/// Build it from [`Capabilities::MINIMAL`] (struct update syntax, or assign
/// fields of a `mut` copy), so fields added later default to "not supported":
///
/// ```
/// # use proxy_core::Capabilities;
/// let caps = Capabilities { cross_process: true, ..Capabilities::MINIMAL };
/// # assert!(!caps.outlives_process);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Another OS process on the same node that holds only the connector's
    /// [`config`](Connector::config) (for instance inside a serialized proxy)
    /// can rebuild it with
    /// [`registry::connector_from_config`](crate::registry::connector_from_config)
    /// and use the same namespace: read objects stored here, put objects read
    /// here, evict. Without it, that rebuild or read fails with a clear error
    /// (never hangs, never returns other bytes).
    ///
    /// Checked by `cross_process_resolve` (a child process resolves a proxy, or
    /// reports a clear error without the capability) and `shared_namespace`
    /// (a child process puts objects in the namespace between the parent's puts).
    pub cross_process: bool,
    /// As `cross_process`, from a process on another node, given that the
    /// addresses and paths in the configuration are valid there. A shared file
    /// system counts: the file connector declares it, and it holds when its
    /// directory is on a file system mounted at the same path on every node
    /// (Lustre, GPFS, NFS), not on node-local storage such as `/dev/shm`, which
    /// the connector cannot tell apart. Not checked by the suite (it runs on one
    /// node); declare it only when the connector's own traffic crosses nodes.
    pub cross_node: bool,
    /// Objects stay readable through other instances on the same namespace after
    /// the instance that stored them has been dropped (without `close`) and its
    /// process has exited: dropping an instance never deletes objects.
    /// [`Connector::close`] may still delete them where the connector is
    /// configured to (the file and Redis connectors' `clear` option). Without
    /// it, objects may vanish with the instance or the process that stored them
    /// (the local connector, a UCX owner).
    ///
    /// Checked by `outlives_process`: an instance rebuilt from the
    /// configuration puts and is dropped, and (with `cross_process`) a child
    /// process puts, prints the keys and exits; the objects must still read
    /// back intact.
    pub outlives_process: bool,
    /// `get` of a remote object is a one-sided (RMA) read into local memory,
    /// with no work by the owner's CPU. Declarative (it shows in benchmarks,
    /// not through the API): not checked by the suite.
    pub one_sided_get: bool,
    /// `get` of a large object (1 MiB and more) returns [`Bytes`] over the
    /// memory the data is in or landed in, with no CPU copy after it arrived in
    /// this process: the connector's own memory (local), a mapping of the page
    /// cache (file, `mmap`), the registered buffer a one-sided read wrote into
    /// (UCX). A `read(2)` or `recv(2)` into a fresh buffer counts as a copy
    /// (the kernel copies), however that buffer is reused afterwards. Small
    /// objects may be copied. Declarative: not checked by the suite.
    pub zero_copy_get: bool,
    /// `get` of an object stored on this node returns [`Bytes`] over the
    /// store's own memory, mapped into this process: no copy at all, not even
    /// into a receive buffer (the local connector's memory; an object server
    /// on this node, whose segments the reader maps and whose objects it pins
    /// while their `Bytes` live). Connectors that decide per server say what
    /// they do for the server they were configured with, once they have
    /// talked to it. Declarative: not checked by the suite.
    pub mapped_get: bool,
    /// `Some(n)`: every `put`, `put_batch` and `Deferrable::set` of an object
    /// over `n` bytes fails with [`Error::TooLarge`] and nothing is written (no
    /// key is returned; a deferrable key stays absent); objects up to `n`
    /// bytes are accepted, space permitting. `None`: the connector sets no
    /// limit of its own; a server may still refuse an object larger than its
    /// configured memory with [`Error::TooLarge`].
    ///
    /// Checked by `too_large` (one byte over the limit, built without
    /// allocating it), `large_object` (256 MiB) and the opt-in `huge_object`
    /// (over 4 GiB).
    pub max_object_size: Option<u64>,
    /// [`Connector::wait_for`] is woken by the store when the object arrives
    /// (a server-side wait, a Redis message, inotify), not by polling: by
    /// every write on the namespace, whichever instance or process made it.
    ///
    /// Checked by `wait_for_wakes` (a key set by the waiting instance and by
    /// another one wakes the wait within seconds, with or without `notify`).
    pub notify: bool,
    /// Objects of 0 bytes are stored like any other (every connector but
    /// one whose store refuses them: a ProxyStore endpoint). `false`: `put`,
    /// `put_batch` and `Deferrable::set` of an empty object fail with a
    /// permanent error that says so, and nothing is written (no key is
    /// returned; a deferrable key stays absent). Objects that went through a
    /// codec are never empty (the codec's header), so a `Store` never meets
    /// this.
    ///
    /// Checked by `empty_object`.
    pub empty_objects: bool,
}

impl Capabilities {
    /// Nothing beyond the mandatory operations; use struct update syntax from here.
    pub const MINIMAL: Capabilities = Capabilities {
        cross_process: false,
        cross_node: false,
        outlives_process: false,
        one_sided_get: false,
        zero_copy_get: false,
        mapped_get: false,
        max_object_size: None,
        notify: false,
        empty_objects: true,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::MINIMAL
    }
}

/// A storage backend: moves encoded objects (bytes) in and out by [`Key`].
///
/// This is the *implementor* contract, deliberately small and synchronous:
/// it is called from plain threads and MPI ranks with no async runtime.
/// All methods take `&self`; a connector is shared by many threads at once and
/// must do its own (fine-grained) synchronisation.
///
/// A connector instance works on a *namespace*: the set of objects its
/// configuration designates (a directory, a key prefix on a server, an object
/// server). Every instance built from the same [`Connector::config`], in this
/// or another process, works on the same namespace.
///
/// Contract (the conformance suite (`proxy_core::conformance`, feature `conformance`) checks each point;
/// the case names are in parentheses):
/// - **Keys are unique in the namespace.** `put`, `put_batch` and
///   [`Deferrable::new_key`] mint keys that no other instance on the namespace,
///   in this or another process, ever mints too: not from a per-instance or
///   per-process counter (`shared_namespace`, `put_get_roundtrip`; temporary
///   names and slots too: `concurrent_instances`).
/// - **Only `set` replaces.** `put` and `put_batch` never replace an object
///   (their keys are new). [`Deferrable::set`] stores the object under a key
///   minted on the namespace by `new_key`, or *replaces* the object under a
///   key minted by `put`, `put_batch` or `new_key` (objects are not
///   write-once: proxy-patterns' `RefMutProxy::set` and `RemoteMut::set`
///   replace owned objects this way): `set_replaces`.
/// - **A read is the whole object or nothing.** `get` returns exactly the bytes
///   stored under the key, or `Ok(None)` when the key is not (or no longer)
///   stored: never another object's bytes, never part of an object. This
///   matters wherever a reader can hold the key while the object is written:
///   [`Deferrable::set`] (a thread or process polling the key sees `None`,
///   then the whole object: `deferrable_set_atomic`) and objects written by
///   other processes. (`put` itself may write in place: nobody has the key
///   before it returns.) `exists` is true only when `get` would return the
///   whole object.
/// - `evict` of a missing key is `Ok(())`; so is evicting twice (`missing_key`).
/// - `*_batch` preserve order and accept duplicate and missing keys
///   (`batch_order`, `get_batch_duplicates`); they are required, so that a
///   backend's pipelined path is never silently replaced by a loop.
/// - **Keys it did not mint.** A malformed key is [`Error::InvalidKey`], never
///   a panic (`bad_keys`); a well-formed key that was never stored, or another
///   connector's key, is [`Error::InvalidKey`] or `Ok(None)`, never other bytes
///   (`never_stored_key`, `foreign_keys`).
/// - **One kind.** [`Connector::kind`] equals `config().kind` and the kind the
///   type is registered under ([`FromConfig::KIND`]): `kind_and_config`.
/// - **Close** as documented on [`Connector::close`] (checked at the end of
///   every case).
/// - **`wait_for`** returns `Ok(false)` once its timeout has passed, not
///   before (`wait_for_timeout`), and wakes soon after the key is stored,
///   also by another instance or process (`wait_for_wakes`).
/// - Capabilities as documented on [`Capabilities`].
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// Short connector kind, the name used in configurations (`"file"`): the
    /// same string as `config().kind` and [`FromConfig::KIND`].
    fn kind(&self) -> &'static str;

    /// What this connector can do.
    fn capabilities(&self) -> Capabilities;

    /// Store one object and return its new key.
    fn put(&self, data: Payload) -> Result<Key>;

    /// Store many objects; keys in the same order.
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>>;

    /// The object's bytes, or `None` if the key is not (or no longer) stored.
    fn get(&self, key: &Key) -> Result<Option<Bytes>>;

    /// Many gets; results in the same order as `keys` (which may repeat).
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>>;

    /// Whether the key is stored (and `get` would return the whole object).
    fn exists(&self, key: &Key) -> Result<bool>;

    /// Remove the object; no error if it is missing.
    fn evict(&self, key: &Key) -> Result<()>;

    /// Release what this instance holds (connections, registrations, a server
    /// it owns).
    ///
    /// - Idempotent: a second and any later `close` return `Ok(())`.
    /// - Whether stored objects are deleted is the connector's documented
    ///   choice (e.g. a `clear` option); other instances on the namespace are
    ///   not closed by it.
    /// - After `close`, `kind`, `capabilities`, `config`, `key_to_string` and
    ///   `parse_key` behave as before. Every other operation either works as
    ///   before (the connector reopens what it needs) or fails with a
    ///   permanent error ([`Error::is_temporary`] false) saying that the
    ///   connector is closed. Never a panic, never a hang, never another
    ///   object's bytes.
    /// - Releases every file it holds open at or under a path of its
    ///   configuration (its directory, a file in it), deleted or not; dropping
    ///   an instance does too.
    ///
    /// The conformance suite closes the connector twice at the end of every
    /// case, checks that no descriptor of its process is open at or under an
    /// absolute path among the configuration's option values (on Linux, from
    /// `/proc/self/fd`), then calls every operation, then checks that no object the case
    /// stored is left (and, given a `leftovers` hook, that the namespace is gone).
    fn close(&self) -> Result<()>;

    /// Everything another process needs to rebuild an equivalent connector
    /// on the same namespace (see [`crate::registry::connector_from_config`]).
    fn config(&self) -> ConnectorConfig;

    /// The key in the connector's own text form, the one people and other
    /// implementations use (e.g. the UUID that the Python ProxyStore's
    /// `FileKey`/`RedisKey` hold). Default: the hex of the encoded key.
    fn key_to_string(&self, key: &Key) -> Result<String> {
        Ok(key.to_string())
    }

    /// Parse the text form of [`Connector::key_to_string`] (also accepts the
    /// hex form by default).
    fn parse_key(&self, s: &str) -> Result<Key> {
        Key::from_hex(s)
    }

    /// Block until `key` exists or `timeout` passes; `Ok(true)` if it exists.
    ///
    /// Proxy futures wait here. Connectors that can be told when an object
    /// arrives override this and declare [`Capabilities::notify`]; the default
    /// polls [`Connector::exists`] with a backoff from 50 µs up to 5 ms, so
    /// it wakes at most ~5 ms late and costs one `exists` per interval.
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        poll_exists(self, key, timeout)
    }

    /// This connector as a [`Deferrable`] one, if it is. Implementing
    /// [`Deferrable`] is not enough: override this to return `Some(self)`.
    /// A connector is deferrable exactly when this returns `Some` (there is no
    /// capability flag to keep in step). Wrappers must forward it.
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        None
    }
}

/// The polling wait behind the default [`Connector::wait_for`] (also the
/// fallback of notifying connectors when notification is unavailable).
pub fn poll_exists<C: Connector + ?Sized>(
    c: &C,
    key: &Key,
    timeout: std::time::Duration,
) -> Result<bool> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(50);
    loop {
        if c.exists(key)? {
            return Ok(true);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ok(false);
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(std::time::Duration::from_millis(5));
    }
}

/// Connectors whose keys can be minted before their object exists
/// (ProxyStore's `DeferrableConnector`): the basis of proxy futures.
///
/// Implement it *and* override [`Connector::as_deferrable`] to return
/// `Some(self)`: code holding a `dyn Connector` finds it only through that
/// method.
pub trait Deferrable: Connector {
    /// A fresh key with no object yet (`exists` is false, `get` is `None`).
    fn new_key(&self) -> Result<Key>;

    /// Store the object for a key from [`Deferrable::new_key`], or replace the
    /// object under a key minted on the namespace by `put`, `put_batch` or
    /// `new_key`, all at once: readers polling the key (in any thread or
    /// process) see `None` or `exists == false` (or the previous object)
    /// until the whole new object is readable, never part of it (write
    /// elsewhere and rename, or use an atomic server command).
    fn set(&self, key: &Key, data: Payload) -> Result<()>;
}

/// A connector type that can be rebuilt from its [`ConnectorConfig`] in any
/// process: implement it and call
/// [`registry::register_connector`](crate::registry::register_connector).
pub trait FromConfig: Connector + Sized {
    /// The `kind` this type is registered under.
    const KIND: &'static str;

    /// Rebuild from a configuration produced by [`Connector::config`].
    fn from_config(config: &ConnectorConfig) -> Result<Self>;
}

/// A connector's serializable configuration: its kind and its options.
///
/// Options are a JSON value, so composite connectors nest their children's
/// configurations and round-trip like any other. In text formats (TOML, JSON)
/// the options appear as a table; in binary formats (postcard, inside a proxy)
/// as a compact JSON string.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorConfig {
    /// Connector kind (`"file"`, `"redis"`, `"ucx"`, ...).
    pub kind: String,
    /// Kind-specific options.
    pub options: serde_json::Value,
}

impl ConnectorConfig {
    /// A configuration from a kind and serializable options.
    pub fn new(kind: impl Into<String>, options: impl Serialize) -> Self {
        let mut options =
            serde_json::to_value(options).expect("connector options serialize to JSON");
        strip_nulls(&mut options);
        ConnectorConfig {
            kind: kind.into(),
            options,
        }
    }

    /// Decode the options as the connector's typed options struct.
    pub fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let options = match &self.options {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            o => o.clone(),
        };
        serde_json::from_value(options)
            .map_err(|e| Error::config(self.kind.clone(), format!("options: {e}")))
    }

    /// Fail unless this configuration is of `kind`.
    pub fn expect_kind(&self, kind: &str) -> Result<()> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(Error::config(
                kind,
                format!("configuration is for connector kind '{}'", self.kind),
            ))
        }
    }
}

/// Drop `null` members of objects (recursively): an absent option and a null
/// one mean the same, and TOML cannot write nulls.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[derive(Serialize, Deserialize)]
struct TextForm {
    kind: String,
    #[serde(default)]
    options: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct BinaryForm {
    kind: String,
    options: String,
}

impl Serialize for ConnectorConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            TextForm {
                kind: self.kind.clone(),
                options: self.options.clone(),
            }
            .serialize(s)
        } else {
            BinaryForm {
                kind: self.kind.clone(),
                options: self.options.to_string(),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ConnectorConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            let mut t = TextForm::deserialize(d)?;
            strip_nulls(&mut t.options);
            Ok(ConnectorConfig {
                kind: t.kind,
                options: t.options,
            })
        } else {
            let b = BinaryForm::deserialize(d)?;
            let mut options = serde_json::from_str(&b.options).map_err(serde::de::Error::custom)?;
            strip_nulls(&mut options);
            Ok(ConnectorConfig {
                kind: b.kind,
                options,
            })
        }
    }
}

/// A shared, type-erased connector.
pub type DynConnector = Arc<dyn Connector>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, IoSlice, Write};

    /// Accepts at most `max` bytes per call, vectored or not, and fails with
    /// `Interrupted` every third call; records the calls.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        calls: usize,
        vectored_calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 3 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if bufs.len() > 1 {
                self.vectored_calls += 1;
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.max {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn payload(parts: usize) -> (Payload, Vec<u8>) {
        let mut p = Payload::new();
        let mut all = Vec::new();
        for i in 0..parts {
            let part: Vec<u8> = (0..(i % 7) + 1).map(|j| (i * 31 + j) as u8).collect();
            all.extend_from_slice(&part);
            p.push(part);
        }
        (p, all)
    }

    #[test]
    fn write_all_to_is_vectored_and_survives_partial_writes() {
        for parts in [1, 2, 3, 64, 65, 200] {
            for max in [1, 3, 5, 1 << 20] {
                let (p, all) = payload(parts);
                let mut w = Trickle {
                    out: Vec::new(),
                    max,
                    calls: 0,
                    vectored_calls: 0,
                };
                p.write_all_to(&mut w).unwrap();
                assert_eq!(w.out, all, "parts {parts}, max {max}");
                if max == 1 << 20 {
                    // Everything in ceil(parts / MAX_SLICES) accepted calls.
                    let accepted = parts.div_ceil(Payload::MAX_SLICES);
                    assert_eq!(w.calls - w.calls / 3, accepted, "parts {parts}");
                    assert_eq!(w.vectored_calls > 0, parts > 1, "parts {parts}");
                }
            }
        }
    }

    #[test]
    fn write_all_to_reports_a_writer_that_stops() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (p, _) = payload(10);
        let e = p.write_all_to(&mut Full(7)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert!(e.to_string().contains("after 7 of"), "{e}");
    }

    /// Options travel inside proxies as JSON text: numbers must come back
    /// bit for bit, however many processes a proxy passes through.
    #[test]
    fn options_roundtrip_exactly_through_the_binary_form() {
        let c = ConnectorConfig::new(
            "x",
            serde_json::json!({"a": 6e202, "b": 0.1, "c": 1.0e-300, "d": -2.5, "e": u64::MAX}),
        );
        let wire = postcard::to_allocvec(&c).unwrap();
        let back: ConnectorConfig = postcard::from_bytes(&wire).unwrap();
        assert_eq!(back, c);
        assert_eq!(postcard::to_allocvec(&back).unwrap(), wire);
    }
}
