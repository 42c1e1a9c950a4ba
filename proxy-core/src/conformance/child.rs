//! The child side of the cross-process cases (this test binary run again).

use std::io::Write as _;

use bytes::Bytes;

use super::data::{checksum, pattern};
use super::{CHILD_ENV, RESULT_TAG};
use crate::connector::{ConnectorConfig, Payload};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::proxy::Proxy;
use crate::registry;

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
