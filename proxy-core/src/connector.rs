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
            many => {
                let mut v = Vec::with_capacity(self.len);
                for p in many {
                    v.extend_from_slice(p);
                }
                Bytes::from(v)
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

    /// Write all parts to `w` (vectored where the writer supports it).
    pub fn write_all_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        for p in &self.parts {
            w.write_all(p)?;
        }
        Ok(())
    }
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
/// and by the [conformance suite](crate::conformance) instead of being discovered
/// by failure.
///
/// Build it with struct update syntax from [`Capabilities::MINIMAL`], so fields
/// added later default to "not supported":
///
/// ```
/// # use proxy_core::Capabilities;
/// let caps = Capabilities { cross_process: true, ..Capabilities::MINIMAL };
/// # assert!(!caps.deferrable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Implements [`Deferrable`] (`new_key` + `set`): needed by proxy futures.
    pub deferrable: bool,
    /// Another OS process on the same node can read objects through a key
    /// (a proxy resolves in another process).
    pub cross_process: bool,
    /// A process on another node can read objects through a key.
    pub cross_node: bool,
    /// Objects outlive the process that stored them.
    pub outlives_process: bool,
    /// `get` returns memory that was written by a one-sided (RMA) read, with
    /// no work by the owner's CPU.
    pub one_sided_get: bool,
    /// `get` hands out bytes that are not copied after they arrive.
    pub zero_copy_get: bool,
    /// Largest object accepted, if limited.
    pub max_object_size: Option<u64>,
}

impl Capabilities {
    /// Nothing beyond the mandatory operations; use struct update syntax from here.
    pub const MINIMAL: Capabilities = Capabilities {
        deferrable: false,
        cross_process: false,
        cross_node: false,
        outlives_process: false,
        one_sided_get: false,
        zero_copy_get: false,
        max_object_size: None,
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
/// Contract (checked by [`conformance`](crate::conformance)):
/// - keys are minted by `put` (write once, read many);
/// - `get` of a missing or evicted key is `Ok(None)`, never another object's
///   bytes and never a partially written object;
/// - `evict` of a missing key is `Ok(())`;
/// - `*_batch` preserve order; they are required, so that a backend's pipelined
///   path is never silently replaced by a loop;
/// - a malformed key is [`Error::InvalidKey`], never a panic.
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// Short connector kind, the name used in configurations (`"file"`).
    fn kind(&self) -> &'static str;

    /// What this connector can do.
    fn capabilities(&self) -> Capabilities;

    /// Store one object and return its new key.
    fn put(&self, data: Payload) -> Result<Key>;

    /// Store many objects; keys in the same order.
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>>;

    /// The object's bytes, or `None` if the key is not (or no longer) stored.
    fn get(&self, key: &Key) -> Result<Option<Bytes>>;

    /// Many gets; results in the same order as `keys`.
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>>;

    /// Whether the key is stored.
    fn exists(&self, key: &Key) -> Result<bool>;

    /// Remove the object; no error if it is missing.
    fn evict(&self, key: &Key) -> Result<()>;

    /// Release resources (connections, servers this instance owns). Idempotent.
    /// Whether stored data is deleted is the connector's documented choice.
    fn close(&self) -> Result<()>;

    /// Everything another process needs to rebuild an equivalent connector
    /// (see [`crate::registry::connector_from_config`]).
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

    /// This connector as a [`Deferrable`] one, if it is (see
    /// [`Capabilities::deferrable`]).
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        None
    }
}

/// Connectors whose keys can be minted before their object exists
/// (ProxyStore's `DeferrableConnector`): the basis of proxy futures.
pub trait Deferrable: Connector {
    /// A fresh key with no object yet (`exists` is false, `get` is `None`).
    fn new_key(&self) -> Result<Key>;

    /// Store the object for a key from [`Deferrable::new_key`].
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
