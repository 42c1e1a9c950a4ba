//! Stream events on the wire: ProxyStore's format (written and read) and
//! this crate's version-1 JSON (read only, for one release).

use bytes::Bytes;
use proxy_core::{Error, Key, Result, StoreConfig};
use serde::{Deserialize, Serialize};

use super::Metadata;
use super::pickle::{self, Val};
use super::pyconfig::{
    json_to_val, key_from_py, key_to_py, store_from_py, store_to_py, val_to_json,
};

/// The version of this crate's former JSON event format, still read.
pub const EVENT_VERSION: u32 = 1;

/// What starts a message in ProxyStore's format: `proxystore.serialize`'s
/// pickle identifier (`CP`, its cloudpickle fallback, is read too).
const PICKLE_HEADER: &[u8] = b"PK\n";

/// One event of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An object stored under `key` in the store `store` (`NEW_OBJECT_KEY`).
    ObjectKey {
        /// The store's configuration.
        store: StoreConfig,
        /// The object's key.
        key: Key,
        /// Whether the consumer's proxy evicts the object when it resolves.
        evict: bool,
        /// The producer's metadata.
        #[serde(default)]
        metadata: Metadata,
    },
    /// An object carried in the event itself (`NEW_OBJECT`), encoded as
    /// [`proxy_core::codec::encode`] encodes it (format identifier first).
    #[serde(skip)]
    Object {
        /// The encoded object.
        data: Bytes,
        /// The producer's metadata.
        metadata: Metadata,
    },
    /// The producer closed the topic (`END_OF_STREAM`).
    EndOfStream,
}

/// One broker message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    /// [`EVENT_VERSION`] in the JSON format; ignored in ProxyStore's.
    #[serde(default = "version")]
    pub version: u32,
    /// The topic.
    pub topic: String,
    /// The events, in order.
    pub events: Vec<Event>,
}

fn version() -> u32 {
    EVENT_VERSION
}

fn field(d: &Val, k: &str) -> Result<Val> {
    d.get(k)
        .ok_or_else(|| Error::decode(format!("stream event without {k:?}")))
}

fn str_field(d: &Val, k: &str) -> Result<String> {
    match &field(d, k)? {
        Val::Str(s) => Ok(s.clone()),
        other => Err(Error::decode(format!(
            "stream event field {k:?} is a {}, not a str",
            other.type_name()
        ))),
    }
}

fn metadata(d: &Val) -> Result<Metadata> {
    match d.get("metadata").map(|m| val_to_json(&m)).transpose()? {
        None | Some(serde_json::Value::Null) => Ok(Metadata::new()),
        Some(serde_json::Value::Object(m)) => Ok(m),
        Some(other) => Err(Error::decode(format!("metadata is not a dict: {other}"))),
    }
}

/// An inline object as Python sees it: `bytes` and `str` as themselves,
/// anything else as a call of `proxystore.serialize.deserialize` on its
/// encoding (NumPy arrays become arrays; our Rust-only `RP` objects fail
/// in Python with ProxyStore's "unknown identifier" error).
fn inline_to_py(data: &Bytes) -> Val {
    match data.get(..3) {
        Some(b"BS\n") => Val::Bytes(data.slice(3..)),
        Some(b"US\n") => match std::str::from_utf8(&data[3..]) {
            Ok(s) => Val::str(s),
            Err(_) => call_deserialize(data),
        },
        _ => call_deserialize(data),
    }
}

fn call_deserialize(data: &Bytes) -> Val {
    Val::object(
        Val::global("proxystore.serialize", "deserialize"),
        vec![Val::Bytes(data.clone())],
        None,
    )
}

fn inline_from_py(v: &Val) -> Result<Bytes> {
    let with = |h: &[u8], b: &[u8]| {
        let mut out = Vec::with_capacity(h.len() + b.len());
        out.extend_from_slice(h);
        out.extend_from_slice(b);
        Bytes::from(out)
    };
    match v {
        Val::Bytes(b) => Ok(with(b"BS\n", b)),
        Val::Str(s) => Ok(with(b"US\n", s.as_bytes())),
        Val::Object(o)
            if v.class_path() == Some(("proxystore.serialize".into(), "deserialize".into())) =>
        {
            match o.borrow().args.as_slice() {
                [Val::Bytes(b)] => Ok(b.clone()),
                _ => Err(Error::decode("deserialize call without one bytes argument")),
            }
        }
        other => Err(Error::decode(format!(
            "an inline stream object of Python type {} cannot be read in Rust \
             (send bytes or str inline, or use a store)",
            other.type_name()
        ))),
    }
}

impl EventBatch {
    /// A batch of `events` on `topic`.
    pub fn new(topic: impl Into<String>, events: Vec<Event>) -> Self {
        EventBatch {
            version: EVENT_VERSION,
            topic: topic.into(),
            events,
        }
    }

    /// Encode in ProxyStore's format (`PK\n` and a pickled dict, as
    /// `proxystore.stream.events.event_to_bytes` writes).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let topic = || ("topic", Val::str(self.topic.clone()));
        let mut events = Vec::with_capacity(self.events.len());
        let mut last: Option<(StoreConfig, Val)> = None;
        for e in &self.events {
            events.push(match e {
                Event::ObjectKey {
                    store,
                    key,
                    evict,
                    metadata,
                } => {
                    let (key_type, raw_key) = key_to_py(store, key)?;
                    // One configuration object for the events of one store
                    // (pickled once, then referred to).
                    let config = match &last {
                        Some((s, v)) if s == store => v.clone(),
                        _ => {
                            let v = store_to_py(store)?;
                            last = Some((store.clone(), v.clone()));
                            v
                        }
                    };
                    Val::str_dict([
                        topic(),
                        ("key_type", Val::str(key_type)),
                        ("raw_key", raw_key),
                        ("evict", Val::Bool(*evict)),
                        ("metadata", json_to_val(&metadata.clone().into())),
                        ("store_config", config),
                        ("event_type", Val::str("NEW_OBJECT_KEY")),
                    ])
                }
                Event::Object { data, metadata } => Val::str_dict([
                    topic(),
                    ("obj", inline_to_py(data)),
                    ("metadata", json_to_val(&metadata.clone().into())),
                    ("event_type", Val::str("NEW_OBJECT")),
                ]),
                Event::EndOfStream => {
                    Val::str_dict([topic(), ("event_type", Val::str("END_OF_STREAM"))])
                }
            });
        }
        let batch = Val::str_dict([
            ("events", Val::list(events)),
            topic(),
            ("event_type", Val::str("EVENT_BATCH")),
        ]);
        let inline: usize = self
            .events
            .iter()
            .map(|e| match e {
                Event::Object { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        let mut out = Vec::with_capacity(inline + 1024 * self.events.len() + 64);
        out.extend_from_slice(PICKLE_HEADER);
        pickle::dump_into(&mut out, &batch);
        Ok(out)
    }

    /// Encode in this crate's former JSON format (version 1), which only
    /// carries events with keys.
    pub fn encode_v1(&self) -> Result<Vec<u8>> {
        if self
            .events
            .iter()
            .any(|e| matches!(e, Event::Object { .. }))
        {
            return Err(Error::Encode {
                reason: "inline objects have no version-1 JSON form".into(),
            });
        }
        serde_json::to_vec(self).map_err(|e| Error::Encode {
            reason: format!("stream event batch: {e}"),
        })
    }

    /// Decode either format: ProxyStore's (`PK\n`/`CP\n` and a pickle) or
    /// version-1 JSON (`{`).
    pub fn decode(bytes: &[u8]) -> Result<EventBatch> {
        Self::decode_bytes(Bytes::copy_from_slice(bytes))
    }

    /// [`EventBatch::decode`] without copying inline objects out of `bytes`.
    pub fn decode_bytes(bytes: Bytes) -> Result<EventBatch> {
        match bytes.get(..3) {
            Some(b"PK\n" | b"CP\n") => Self::decode_pickle(bytes.slice(3..)),
            _ if bytes.first() == Some(&b'{') => Self::decode_v1(&bytes),
            _ => Err(Error::decode(format!(
                "not a stream event batch: starts with {:?} (neither ProxyStore's \
                 pickled events nor version-1 JSON)",
                String::from_utf8_lossy(&bytes[..bytes.len().min(8)])
            ))),
        }
    }

    fn decode_v1(bytes: &[u8]) -> Result<EventBatch> {
        #[derive(Deserialize)]
        struct V {
            version: u32,
        }
        let v: V = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("not a stream event batch: {e}")))?;
        if v.version != EVENT_VERSION {
            return Err(Error::decode(format!(
                "stream event batch of version {} (this consumer reads version {EVENT_VERSION} \
                 and ProxyStore's format)",
                v.version
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("malformed stream event batch: {e}")))
    }

    fn decode_pickle(bytes: Bytes) -> Result<EventBatch> {
        let root = pickle::loads(bytes)?;
        let kind = str_field(&root, "event_type")?;
        if kind != "EVENT_BATCH" {
            return Err(Error::decode(format!(
                "stream message is a {kind} event, not an EVENT_BATCH"
            )));
        }
        let topic = str_field(&root, "topic")?;
        let list = match &field(&root, "events")? {
            Val::List(l) => l.borrow().clone(),
            other => {
                return Err(Error::decode(format!(
                    "events is a {}, not a list",
                    other.type_name()
                )));
            }
        };
        let mut events = Vec::with_capacity(list.len());
        // One store configuration object is shared by the events of a batch.
        let mut last_store: Option<(usize, StoreConfig)> = None;
        for e in &list {
            let kind = str_field(e, "event_type")?;
            events.push(match kind.as_str() {
                "NEW_OBJECT_KEY" => {
                    let cfg = field(e, "store_config")?;
                    let id = match &cfg {
                        Val::Object(o) => std::rc::Rc::as_ptr(o) as usize,
                        _ => 0,
                    };
                    let store = match &last_store {
                        Some((i, s)) if *i == id && id != 0 => s.clone(),
                        _ => {
                            let s = store_from_py(&cfg)?;
                            last_store = Some((id, s.clone()));
                            s
                        }
                    };
                    let evict = match field(e, "evict")? {
                        Val::Bool(b) => b,
                        other => {
                            return Err(Error::decode(format!(
                                "evict is a {}, not a bool",
                                other.type_name()
                            )));
                        }
                    };
                    Event::ObjectKey {
                        key: key_from_py(&str_field(e, "key_type")?, &field(e, "raw_key")?)?,
                        store,
                        evict,
                        metadata: metadata(e)?,
                    }
                }
                "NEW_OBJECT" => Event::Object {
                    data: inline_from_py(&field(e, "obj")?)?,
                    metadata: metadata(e)?,
                },
                "END_OF_STREAM" => Event::EndOfStream,
                other => {
                    return Err(Error::decode(format!(
                        "unknown stream event type {other:?}"
                    )));
                }
            });
        }
        Ok(EventBatch::new(topic, events))
    }
}
