//! [`EndpointConnector`]: the Python `EndpointConnector` in Rust.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload, Result,
};
use serde::{Deserialize, Serialize};

use crate::KIND;
use crate::discover::{self, EndpointConfig};
use crate::http::{Client, Response, encode};
use crate::key::EndpointKey;

/// The serializable options (ProxyStore's `EndpointConnector.config()`:
/// `endpoints` and `proxystore_dir`, plus timeouts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointOptions {
    /// Endpoint UUIDs; the first one configured and answering on this
    /// host is the local endpoint.
    pub endpoints: Vec<String>,
    /// Where endpoint configurations are (default ProxyStore's home directory).
    #[serde(default)]
    pub proxystore_dir: Option<String>,
    /// Connect timeout in milliseconds.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the endpoint in one socket read or write, in
    /// milliseconds (0 = none). A get from a remote endpoint waits for the
    /// peer transfer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_connect_ms() -> u64 {
    5000
}
fn default_timeout_ms() -> u64 {
    120_000
}

/// Objects in ProxyStore endpoints, through the local endpoint's HTTP API
/// (`/set`, `/get`, `/exists`, `/evict` with `key` and `endpoint` query
/// parameters, exactly as the Python client): an object stored at one
/// endpoint is read through any endpoint peered with it (over WebRTC, by the
/// endpoints themselves).
pub struct EndpointConnector {
    opts: EndpointOptions,
    local: EndpointConfig,
    local_id: [u8; 16],
    client: Client,
}

impl fmt::Debug for EndpointConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EndpointConnector({} @ {}:{})",
            self.local.uuid,
            self.local.host.as_deref().unwrap_or("?"),
            self.local.port
        )
    }
}

fn io_error(op: &'static str, what: &str, e: std::io::Error, after: Duration) -> Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        Error::Timeout {
            connector: KIND.into(),
            operation: op,
            after,
        }
    } else {
        Error::temporary(KIND, op, format!("{what}: {e}"))
    }
}

impl EndpointOptions {
    /// These endpoints, every other option at its default.
    pub fn new(endpoints: Vec<String>) -> Self {
        EndpointOptions {
            endpoints,
            proxystore_dir: None,
            connect_timeout_ms: default_connect_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl EndpointConnector {
    /// Connect to the first of `endpoints` (UUIDs) configured on this host
    /// that answers with its UUID.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Result<Self> {
        Self::from_options(EndpointOptions::new(
            endpoints.into_iter().map(Into::into).collect(),
        ))
    }

    /// From options: find the local endpoint as ProxyStore does.
    pub fn from_options(opts: EndpointOptions) -> Result<Self> {
        if opts.endpoints.is_empty() {
            return Err(Error::config(KIND, "at least one endpoint must be given"));
        }
        let wanted = opts
            .endpoints
            .iter()
            .map(|e| {
                uuid::Uuid::parse_str(e).map_err(|err| {
                    Error::config(KIND, format!("endpoint {e:?} is not a UUID: {err}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dir = opts
            .proxystore_dir
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(discover::home_dir);
        let connect = Duration::from_millis(opts.connect_timeout_ms.max(1));
        let timeout = (opts.timeout_ms > 0).then(|| Duration::from_millis(opts.timeout_ms));
        let mut tried = Vec::new();
        for cfg in discover::configs(&dir) {
            let Ok(id) = uuid::Uuid::parse_str(&cfg.uuid) else {
                continue;
            };
            if !wanted.contains(&id) {
                continue;
            }
            let Some(host) = cfg.host.clone() else {
                tried.push(format!(
                    "{} ({id}): not started (no host in its configuration)",
                    cfg.name
                ));
                continue;
            };
            let client = Client::new(&host, cfg.port, connect, timeout);
            match client.request("GET", "/endpoint", &[]) {
                Ok(r)
                    if r.status == 200
                        && String::from_utf8_lossy(&r.body).contains(&id.to_string()) =>
                {
                    return Ok(EndpointConnector {
                        local_id: *id.as_bytes(),
                        local: cfg,
                        client,
                        opts,
                    });
                }
                Ok(r) => tried.push(format!(
                    "{} at {host}:{}: answered {} {:?}",
                    cfg.name,
                    cfg.port,
                    r.status,
                    r.text()
                )),
                Err(e) => tried.push(format!("{} at {host}:{}: {e}", cfg.name, cfg.port)),
            }
        }
        Err(Error::temporary(
            KIND,
            "connect",
            format!(
                "no endpoint of {:?} is configured under {} and answering{}",
                opts.endpoints,
                dir.display(),
                if tried.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", tried.join("; "))
                }
            ),
        ))
    }

    /// The local endpoint's UUID.
    pub fn endpoint_uuid(&self) -> String {
        self.local.uuid.clone()
    }

    fn after(&self) -> Duration {
        Duration::from_millis(self.opts.timeout_ms)
    }

    fn call(
        &self,
        op: &'static str,
        method: &str,
        route: &str,
        key: &EndpointKey,
        body: &[Bytes],
    ) -> Result<Response> {
        let mut q = format!("/{route}?key={}", encode(&key.object_id_str()));
        if let Some(e) = key.endpoint_id_str() {
            q.push_str(&format!("&endpoint={}", encode(&e)));
        }
        let what = format!(
            "endpoint {} at {}:{}",
            self.local.uuid,
            self.local.host.as_deref().unwrap_or("?"),
            self.local.port
        );
        let r = self
            .client
            .request(method, &q, body)
            .map_err(|e| io_error(op, &what, e, self.after()))?;
        match r.status {
            200 | 404 => Ok(r),
            // A failed peer request (the remote endpoint unreachable, the
            // relay down): may work later.
            500 => Err(Error::temporary(KIND, op, format!("{what}: {}", r.text()))),
            s => Err(Error::permanent(
                KIND,
                op,
                format!("{what}: HTTP {s}: {}", r.text()),
            )),
        }
    }

    /// Whether the endpoint would take `data` (not empty, within the
    /// size limit); checked before anything is sent.
    fn check_payload(&self, op: &'static str, data: &Payload) -> Result<()> {
        if data.is_empty() {
            return Err(Error::permanent(
                KIND,
                op,
                "a ProxyStore endpoint refuses empty objects (\"received empty payload\")",
            ));
        }
        if let Some(limit) = self.local.storage.max_object_size {
            if data.len() as u64 > limit {
                return Err(Error::TooLarge {
                    connector: KIND.into(),
                    size: data.len() as u64,
                    limit,
                });
            }
        }
        Ok(())
    }

    fn set_key(&self, op: &'static str, key: &EndpointKey, data: &Payload) -> Result<()> {
        self.check_payload(op, data)?;
        self.call(op, "POST", "set", key, data.parts()).map(drop)
    }

    fn fresh_key(&self) -> EndpointKey {
        EndpointKey {
            object_id: *uuid::Uuid::new_v4().as_bytes(),
            endpoint_id: Some(self.local_id),
        }
    }
}

impl Connector for EndpointConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::MINIMAL;
        caps.cross_process = true;
        caps.cross_node = true;
        caps.outlives_process = true;
        caps.max_object_size = self.local.storage.max_object_size;
        // "received empty payload": endpoints store no empty object.
        caps.empty_objects = false;
        caps
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let k = self.fresh_key();
        self.set_key("put", &k, &data)?;
        Ok(k.into())
    }

    /// One request per object, as the Python connector (the API has no batch).
    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        // An object the endpoint would refuse fails the batch before any
        // object is written.
        for d in &data {
            self.check_payload("put_batch", d)?;
        }
        data.into_iter().map(|d| self.put(d)).collect()
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let k = EndpointKey::from_key(key)?;
        let r = self.call("get", "GET", "get", &k, &[])?;
        Ok((r.status == 200).then_some(r.body))
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let k = EndpointKey::from_key(key)?;
        let r = self.call("exists", "GET", "exists", &k, &[])?;
        let t = String::from_utf8_lossy(&r.body).replace(' ', "");
        match (
            t.contains("\"exists\":true"),
            t.contains("\"exists\":false"),
        ) {
            (true, false) => Ok(true),
            (false, true) => Ok(false),
            _ => Err(Error::permanent(
                KIND,
                "exists",
                format!("unexpected answer {:?}", r.text()),
            )),
        }
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let k = EndpointKey::from_key(key)?;
        self.call("evict", "POST", "evict", &k, &[]).map(drop)
    }

    /// Drops the connections; objects stay at their endpoints (as in Python).
    fn close(&self) -> Result<()> {
        self.client.clear();
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.opts)
    }

    fn key_to_string(&self, key: &Key) -> Result<String> {
        Ok(EndpointKey::from_key(key)?.to_text())
    }

    fn parse_key(&self, s: &str) -> Result<Key> {
        EndpointKey::from_text(s).map(Key::from)
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }
}

impl Deferrable for EndpointConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(self.fresh_key().into())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        self.set_key("set", &EndpointKey::from_key(key)?, &data)
    }
}

impl FromConfig for EndpointConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        Self::from_options(config.options()?)
    }
}
