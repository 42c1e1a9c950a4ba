//! [`OfiConfig`]: the libfabric connector's configuration.

use object_server::{ClientOptions, ServerBinary, TransportConfig};
use proxy_core::url::{QueryKey, value};
use serde::{Deserialize, Serialize};

use crate::ofi::InfoQuery;

/// Options of a [`crate::OfiConnector`] (its `ConnectorConfig` options): the
/// object-server client options every fabric shares, and libfabric's own.
///
/// Only options that differ from their defaults are written into a
/// configuration (and so into every proxy), which keeps proxies small.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct OfiConfig {
    /// The shared options (server address, data path, timeout, spawn, ...).
    #[serde(flatten)]
    pub client: ClientOptions,
    /// libfabric provider (`"shm"`, `"tcp;ofi_rxm"`, `"cxi"`, `"efa"`,
    /// `"verbs;ofi_rxm"`); `None`: the `FI_PROVIDER` variable, else
    /// libfabric's first choice. A spawned server is started with the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// libfabric domain (NIC) name (`"lo"`, `"eth0"`, `"cxi0"`); `None`:
    /// the provider's first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl OfiConfig {
    /// Options for the server at `server` (`host:port`), defaults otherwise.
    pub fn new(server: impl Into<String>) -> Self {
        OfiConfig::default().with_server(server)
    }

    /// Builder: the libfabric provider.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Builder: the libfabric domain (NIC).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The provider in effect: the option, else `FI_PROVIDER`.
    pub fn effective_provider(&self) -> Option<String> {
        self.provider
            .clone()
            .or_else(|| std::env::var("FI_PROVIDER").ok().filter(|p| !p.is_empty()))
    }

    pub(crate) fn query(&self) -> InfoQuery {
        InfoQuery {
            provider: self.effective_provider(),
            domain: self.domain.clone(),
        }
    }
}

impl TransportConfig for OfiConfig {
    const SERVER: ServerBinary = ServerBinary {
        name: "proxystore-ofi-server",
        env: "PROXYSTORE_OFI_SERVER",
        build: "cargo build --release -p ofi-connector --bins",
    };
    const QUERY_KEYS: &'static [QueryKey<Self>] =
        &proxy_core::query_keys![Self; provider: value::some_text, domain: value::some_text];

    fn client(&self) -> &ClientOptions {
        &self.client
    }
    fn client_mut(&mut self) -> &mut ClientOptions {
        &mut self.client
    }
    fn server_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(p) = &self.provider {
            a.extend(["--provider".into(), p.clone()]);
        }
        if let Some(d) = &self.domain {
            a.extend(["--domain".into(), d.clone()]);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_server_gets_the_same_provider_and_domain() {
        assert!(OfiConfig::new("h:1").server_args().is_empty());
        let c = OfiConfig::new("h:1")
            .with_provider("tcp;ofi_rxm")
            .with_domain("lo");
        assert_eq!(
            c.server_args(),
            ["--provider", "tcp;ofi_rxm", "--domain", "lo"]
        );
        assert_eq!(OfiConfig::SERVER.name, "proxystore-ofi-server");
        assert_eq!(OfiConfig::SERVER.env, "PROXYSTORE_OFI_SERVER");
    }

    #[test]
    fn flat_config_without_defaults_or_secret() {
        let c = OfiConfig::new("h:1")
            .with_provider("tcp;ofi_rxm")
            .with_secret("pw");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"server": "h:1", "provider": "tcp;ofi_rxm"})
        );
        let back: OfiConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.provider.as_deref(), Some("tcp;ofi_rxm"));
        assert_eq!(back.client.secret, None);
        assert_eq!(back.query().provider.as_deref(), Some("tcp;ofi_rxm"));
    }
}
