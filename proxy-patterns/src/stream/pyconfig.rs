//! Store configurations and keys as the Python ProxyStore names them
//! (the mapping is tabled in the `stream` module's docs).

use proxy_core::{ConnectorConfig, Error, FileKey, Key, Result, StoreConfig};
use redis_connector::RedisKey;
use serde_json::{Map, Value};

use super::pickle::Val;

const PY_CONFIG_MODULE: &str = "proxystore.store.config";
const PY_FILE: &str = "proxystore.connectors.file.FileConnector";
const PY_REDIS: &str = "proxystore.connectors.redis.RedisConnector";
const PY_FILE_KEY: &str = "proxystore.connectors.file.FileKey";
const PY_REDIS_KEY: &str = "proxystore.connectors.redis.RedisKey";
const RS_CONNECTOR: &str = "proxystore_rs.RustConnector";
const RS_KEY: &str = "proxystore_rs.RustKey";
/// Python's default `cache_size` (objects), used for a cache we have.
const PY_CACHE_SIZE: i128 = 16;
const MAX_DEPTH: usize = 64;

fn bad(reason: impl std::fmt::Display) -> Error {
    Error::decode(format!("stream event: {reason}"))
}

/// Whether the Python ProxyStore opens this connector with its own class.
fn python_native(c: &ConnectorConfig) -> bool {
    match c.kind.as_str() {
        "file" => true,
        "redis" => {
            let o = &c.options;
            let empty = |k: &str| o.get(k).is_none_or(|v| v.is_null() || v == "" || v == 0);
            empty("db") && empty("prefix") && empty("username")
        }
        _ => false,
    }
}

/// A pydantic model of `proxystore.store.config`, as pickle rebuilds it.
fn py_model(class: &str, fields: Vec<(&str, Val)>) -> Val {
    let names = fields.iter().map(|(k, _)| Val::str(*k)).collect();
    let state = Val::str_dict([
        ("__dict__", Val::str_dict(fields)),
        ("__pydantic_extra__", Val::None),
        ("__pydantic_fields_set__", Val::set(names)),
        ("__pydantic_private__", Val::None),
    ]);
    Val::object(Val::global(PY_CONFIG_MODULE, class), vec![], Some(state))
}

/// Our store configuration as a Python `StoreConfig`.
pub(crate) fn store_to_py(s: &StoreConfig) -> Result<Val> {
    let c = &s.connector;
    let opt = |k: &str| c.options.get(k).cloned().unwrap_or(Value::Null);
    let (kind, options) = match c.kind.as_str() {
        "file" => (
            PY_FILE,
            Val::str_dict([
                ("store_dir", json_to_val(&opt("dir"))),
                ("clear", Val::Bool(false)),
                ("buffering", Val::Int(-1)),
            ]),
        ),
        "redis" if python_native(c) => (
            PY_REDIS,
            Val::str_dict([
                ("hostname", json_to_val(&opt("host"))),
                ("port", json_to_val(&opt("port"))),
                ("clear", Val::Bool(false)),
            ]),
        ),
        kind => {
            let mut o = match &c.options {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => {
                    return Err(Error::Encode {
                        reason: format!("connector options of {kind:?} are not an object: {other}"),
                    });
                }
            };
            o.insert("kind".into(), Value::String(kind.into()));
            (RS_CONNECTOR, json_to_val(&Value::Object(o)))
        }
    };
    let connector = py_model(
        "ConnectorConfig",
        vec![("kind", Val::str(kind)), ("options", options)],
    );
    let cache = if s.cache_bytes == 0 { 0 } else { PY_CACHE_SIZE };
    Ok(py_model(
        "StoreConfig",
        vec![
            ("name", Val::str(s.name.clone())),
            ("connector", connector),
            ("serializer", Val::None),
            ("deserializer", Val::None),
            ("cache_size", Val::Int(cache)),
            ("metrics", Val::Bool(false)),
            ("populate_target", Val::Bool(s.populate_target)),
            ("auto_register", Val::Bool(s.register)),
        ],
    ))
}

/// The fields of a pydantic model (its `__dict__`), or a plain dict.
fn model_fields(v: &Val, class: &str) -> Result<Val> {
    match v {
        Val::Dict(_) => Ok(v.clone()),
        Val::Object(o) => {
            let path = v.class_path().unwrap_or_default();
            if path != (PY_CONFIG_MODULE.to_string(), class.to_string()) {
                return Err(bad(format!("expected a {class}, got {}", v.type_name())));
            }
            o.borrow()
                .state
                .as_ref()
                .and_then(|s| s.get("__dict__"))
                .ok_or_else(|| bad(format!("{class} without fields")))
        }
        other => Err(bad(format!(
            "expected a {class}, got {}",
            other.type_name()
        ))),
    }
}

fn is_kind(kind: &str, full: &str) -> bool {
    let name = full.rsplit('.').next().unwrap_or(full).to_ascii_lowercase();
    let k = kind.to_ascii_lowercase();
    kind == full || k == name || k == name.trim_end_matches("connector")
}

/// A Python `StoreConfig` as ours.
pub(crate) fn store_from_py(v: &Val) -> Result<StoreConfig> {
    let f = model_fields(v, "StoreConfig")?;
    let name = match &f.get("name") {
        Some(Val::Str(s)) => s.clone(),
        _ => return Err(bad("store_config without a name")),
    };
    let c = model_fields(
        &f.get("connector")
            .ok_or_else(|| bad("store_config without a connector"))?,
        "ConnectorConfig",
    )?;
    let kind = match &c.get("kind") {
        Some(Val::Str(s)) => s.clone(),
        _ => return Err(bad("connector config without a kind")),
    };
    let opts = match c.get("options").map(|o| val_to_json(&o)).transpose()? {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(bad(format!("connector options are not a dict: {other}"))),
    };
    let get = |k: &str| opts.get(k).cloned().unwrap_or(Value::Null);
    let connector = if is_kind(&kind, PY_FILE) {
        ConnectorConfig {
            kind: "file".into(),
            options: serde_json::json!({ "dir": get("store_dir") }),
        }
    } else if is_kind(&kind, PY_REDIS) {
        ConnectorConfig {
            kind: "redis".into(),
            options: serde_json::json!({ "host": get("hostname"), "port": get("port") }),
        }
    } else if kind == RS_CONNECTOR {
        let mut o = opts.clone();
        let Some(Value::String(k)) = o.remove("kind") else {
            return Err(bad("proxystore_rs.RustConnector options without a kind"));
        };
        ConnectorConfig {
            kind: k,
            options: Value::Object(o),
        }
    } else if let Some(class) = kind.strip_prefix("proxystore_rs.")
        && let Some(k) = class.strip_suffix("Connector")
        && !k.is_empty()
    {
        ConnectorConfig {
            kind: k.to_ascii_lowercase(),
            options: Value::Object(opts.clone()),
        }
    } else {
        return Err(Error::InvalidConfig {
            connector: None,
            reason: format!(
                "stream event: connector {kind:?} is not one this build opens (file, redis, proxystore_rs.*)"
            ),
        });
    };
    let mut s = StoreConfig::new(name, connector);
    if matches!(f.get("cache_size"), Some(Val::Int(0))) {
        s.cache_bytes = 0;
    }
    if let Some(Val::Bool(b)) = f.get("populate_target") {
        s.populate_target = b;
    }
    Ok(s)
}

/// `(key_type, raw_key)` of a key of the store `s`.
pub(crate) fn key_to_py(s: &StoreConfig, key: &Key) -> Result<(&'static str, Val)> {
    let c = &s.connector;
    Ok(match c.kind.as_str() {
        "file" => (
            PY_FILE_KEY,
            Val::list(vec![Val::str(key.decode::<FileKey>("file")?.filename())]),
        ),
        "redis" if python_native(c) => (
            PY_REDIS_KEY,
            Val::list(vec![Val::str(RedisKey::from_key(key)?.redis_key())]),
        ),
        kind => (
            RS_KEY,
            Val::list(vec![
                Val::str(kind),
                Val::Bytes(bytes::Bytes::copy_from_slice(key.as_bytes())),
            ]),
        ),
    })
}

/// Our key from `(key_type, raw_key)`.
pub(crate) fn key_from_py(key_type: &str, raw: &Val) -> Result<Key> {
    let parts = match raw {
        Val::List(l) => l.borrow().clone(),
        Val::Tuple(t) => t.to_vec(),
        other => return Err(bad(format!("raw_key is a {}", other.type_name()))),
    };
    match (key_type, parts.as_slice()) {
        (PY_FILE_KEY, [Val::Str(s)]) => Ok(FileKey::from_filename(s)?.into()),
        (PY_REDIS_KEY, [Val::Str(s)]) => Ok(RedisKey::from_redis_key(s)?.into()),
        // `RustKey(kind, data)`, or with its third field `named` false.
        (RS_KEY, [Val::Str(_), Val::Bytes(b)] | [Val::Str(_), Val::Bytes(b), Val::Bool(false)]) => {
            Ok(Key::from_bytes(b.clone()))
        }
        (RS_KEY, [Val::Str(_), Val::Bytes(_), Val::Bool(true)]) => Err(bad(format!(
            "raw_key of a {key_type} names its object in a `names=` store, which a stream \
             consumer here does not open: produce without `names=`"
        ))),
        (PY_FILE_KEY | PY_REDIS_KEY | RS_KEY, _) => {
            Err(bad(format!("raw_key of a {key_type} has the wrong fields")))
        }
        _ => Err(bad(format!(
            "unknown key_type {key_type:?} (known: {PY_FILE_KEY}, {PY_REDIS_KEY}, {RS_KEY})"
        ))),
    }
}

/// A JSON value as a Python value.
pub(crate) fn json_to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::None,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Val::Int(i.into()),
            (_, Some(u)) => Val::Int(u.into()),
            _ => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Val::str(s.clone()),
        Value::Array(a) => Val::list(a.iter().map(json_to_val).collect()),
        Value::Object(m) => Val::dict(
            m.iter()
                .map(|(k, v)| (Val::str(k.clone()), json_to_val(v)))
                .collect(),
        ),
    }
}

/// A Python value as JSON (dicts with string keys, lists and tuples,
/// scalars); anything else is an error naming its type.
pub(crate) fn val_to_json(v: &Val) -> Result<Value> {
    to_json(v, 0)
}

fn to_json(v: &Val, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(bad("value nested too deeply (or containing itself)"));
    }
    let seq = |items: &[Val]| -> Result<Value> {
        items
            .iter()
            .map(|x| to_json(x, depth + 1))
            .collect::<Result<_>>()
            .map(Value::Array)
    };
    Ok(match v {
        Val::None => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Int(i) => {
            if let Ok(x) = i64::try_from(*i) {
                x.into()
            } else if let Ok(x) = u64::try_from(*i) {
                x.into()
            } else {
                return Err(bad(format!("integer {i} does not fit in 64 bits")));
            }
        }
        Val::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| bad(format!("float {f} has no JSON form")))?,
        Val::Str(s) => Value::String(s.clone()),
        Val::List(l) => seq(&l.borrow())?,
        Val::Tuple(t) => seq(t)?,
        Val::Dict(d) => {
            let mut m = Map::new();
            for (k, x) in d.borrow().iter() {
                let Val::Str(k) = k else {
                    return Err(bad(format!("dict key of type {}", k.type_name())));
                };
                m.insert(k.clone(), to_json(x, depth + 1)?);
            }
            Value::Object(m)
        }
        other => return Err(bad(format!("a value of type {}", other.type_name()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `proxystore_rs.RustKey` has a third field, `named` (default false):
    /// keys with two fields and with `named` false are ours; a named key is
    /// refused with what to do.
    #[test]
    fn rust_keys_with_and_without_named() {
        let data = bytes::Bytes::from_static(b"\x01\x02\x03");
        let two = Val::list(vec![Val::str("ucx"), Val::Bytes(data.clone())]);
        let three = Val::list(vec![
            Val::str("ucx"),
            Val::Bytes(data.clone()),
            Val::Bool(false),
        ]);
        for raw in [&two, &three] {
            let k = key_from_py(RS_KEY, raw).unwrap();
            assert_eq!(k.as_bytes(), &data[..]);
        }
        let named = Val::list(vec![Val::str("ucx"), Val::Bytes(data), Val::Bool(true)]);
        let e = key_from_py(RS_KEY, &named).unwrap_err().to_string();
        assert!(e.contains("names="), "{e}");
        let short = Val::list(vec![Val::str("ucx")]);
        assert!(key_from_py(RS_KEY, &short).is_err());
    }
}
