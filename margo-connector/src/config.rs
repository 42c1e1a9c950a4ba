//! [`MargoConfig`]: the Margo connector's configuration.

use object_server::{ClientOptions, ServerBinary, TransportConfig};
use proxy_core::url::{QueryKey, value};
use serde::{Deserialize, Serialize};

/// Environment variable naming the Mercury protocol when the configuration
/// does not (`na+sm`, `ofi+tcp`, `ofi+cxi`, ...).
pub const PROTOCOL_ENV: &str = "PROXYSTORE_MARGO_PROTOCOL";

/// The protocol when neither the configuration nor the environment names one.
pub const DEFAULT_PROTOCOL: &str = "na+sm";

pub(crate) fn default_protocol() -> String {
    std::env::var(PROTOCOL_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROTOCOL.to_string())
}

/// Options of a [`crate::MargoConnector`] (its `ConnectorConfig` options):
/// the object-server client options every fabric shares, and Margo's own.
///
/// Only options that differ from their defaults are written into a
/// configuration (and so into every proxy), which keeps proxies small.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MargoConfig {
    /// The shared options (server address, data path, timeout, spawn, ...).
    #[serde(flatten)]
    pub client: ClientOptions,
    /// Mercury protocol (`"na+sm"` on a node; `"ofi+tcp"`, `"ofi+cxi"`,
    /// `"ofi+verbs"`, `"ucx+all"` across nodes), optionally with the address
    /// to use (`"ofi+tcp://127.0.0.1"`). `None`: `PROXYSTORE_MARGO_PROTOCOL`,
    /// else `na+sm`. A spawned server is started with the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl MargoConfig {
    /// Options for the server at `server` (`host:port`), defaults otherwise.
    pub fn new(server: impl Into<String>) -> Self {
        MargoConfig::default().with_server(server)
    }

    /// Builder: the Mercury protocol.
    pub fn with_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// The protocol in effect: the option, else `PROXYSTORE_MARGO_PROTOCOL`,
    /// else `na+sm`.
    pub fn effective_protocol(&self) -> String {
        self.protocol.clone().unwrap_or_else(default_protocol)
    }
}

impl TransportConfig for MargoConfig {
    const SERVER: ServerBinary = ServerBinary {
        name: "proxystore-margo-server",
        env: "PROXYSTORE_MARGO_SERVER",
        build: "cargo build --release -p margo-connector --bins",
    };
    const QUERY_KEYS: &'static [QueryKey<Self>] =
        &proxy_core::query_keys![Self; protocol: value::some_text];

    fn client(&self) -> &ClientOptions {
        &self.client
    }
    fn client_mut(&mut self) -> &mut ClientOptions {
        &mut self.client
    }
    fn server_args(&self) -> Vec<String> {
        match &self.protocol {
            Some(p) => vec!["--margo-protocol".into(), p.clone()],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_server_gets_the_same_protocol() {
        assert!(MargoConfig::new("h:1").server_args().is_empty());
        let c = MargoConfig::new("h:1").with_protocol("ofi+tcp");
        assert_eq!(c.server_args(), ["--margo-protocol", "ofi+tcp"]);
        assert_eq!(MargoConfig::SERVER.name, "proxystore-margo-server");
        assert_eq!(MargoConfig::SERVER.env, "PROXYSTORE_MARGO_SERVER");
    }

    #[test]
    fn flat_config_without_defaults_or_secret() {
        let c = MargoConfig::new("h:1")
            .with_protocol("ofi+tcp")
            .with_secret("pw");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"server": "h:1", "protocol": "ofi+tcp"})
        );
        let back: MargoConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.effective_protocol(), "ofi+tcp");
        assert_eq!(back.client.secret, None);
        let plain: MargoConfig =
            serde_json::from_value(serde_json::json!({"server": "h:1"})).unwrap();
        assert_eq!(plain.protocol, None);
    }
}
