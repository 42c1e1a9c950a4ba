//! [`UcxConfig`]: the UCX connector's configuration.

use object_server::{ClientOptions, ServerBinary, TransportConfig};
use proxy_core::url::{QueryKey, value};
use serde::{Deserialize, Serialize};

/// Options of a [`crate::UcxConnector`] (its `ConnectorConfig` options): the
/// object-server client options every fabric shares, and UCX's own.
///
/// Only options that differ from their defaults are written into a
/// configuration (and so into every proxy), which keeps proxies small.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct UcxConfig {
    /// The shared options (server address, data path, timeout, spawn, ...).
    #[serde(flatten)]
    pub client: ClientOptions,
    /// UCX transports of this process (`UCX_TLS` syntax, e.g. `"shm,cma,self"`
    /// or `"tcp"`); `None` keeps UCX's own choice (the `UCX_TLS` variable).
    /// A spawned server is started with the same transports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucx_tls: Option<String>,
}

impl UcxConfig {
    /// Options for the server at `server` (`host:port`), defaults otherwise.
    pub fn new(server: impl Into<String>) -> Self {
        UcxConfig::default().with_server(server)
    }

    /// Builder: set the UCX transports (`UCX_TLS` syntax).
    pub fn with_ucx_tls(mut self, tls: impl Into<String>) -> Self {
        self.ucx_tls = Some(tls.into());
        self
    }

    /// The transports in effect: the option, else `UCX_TLS`.
    pub(crate) fn tls(&self) -> Option<String> {
        self.ucx_tls
            .clone()
            .or_else(|| std::env::var("UCX_TLS").ok())
    }
}

impl TransportConfig for UcxConfig {
    const SERVER: ServerBinary = ServerBinary {
        name: "proxystore-ucx-server",
        env: "PROXYSTORE_UCX_SERVER",
        build: "cargo build --release -p ucx-connector --bins",
    };
    const QUERY_KEYS: &'static [QueryKey<Self>] =
        &proxy_core::query_keys![Self; ucx_tls: value::some_text];

    fn client(&self) -> &ClientOptions {
        &self.client
    }
    fn client_mut(&mut self) -> &mut ClientOptions {
        &mut self.client
    }
    fn server_args(&self) -> Vec<String> {
        match &self.ucx_tls {
            Some(tls) => vec!["--tls".into(), tls.clone()],
            None => Vec::new(),
        }
    }
}

/// Whether a `UCX_TLS` value names only TCP (plus `self`), where UCX 1.13's
/// RMA is emulated in software.
pub fn tls_is_tcp_only(tls: &str) -> bool {
    let mut any = false;
    for t in tls.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t == "self" {
            continue;
        }
        if t != "tcp" {
            return false;
        }
        any = true;
    }
    any
}

/// Whether a `UCX_TLS` value names only intra-node shared memory, where
/// UCX 1.13 has no peer-failure detection (asking for it fails).
pub(crate) fn tls_is_shm_only(tls: &str) -> bool {
    const SHM: [&str; 9] = [
        "self", "sm", "shm", "posix", "sysv", "cma", "knem", "xpmem", "mm",
    ];
    tls.split(',')
        .map(str::trim)
        .all(|x| x.is_empty() || SHM.contains(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_server_gets_the_same_transports() {
        assert!(UcxConfig::new("h:1").server_args().is_empty());
        let c = UcxConfig::new("h:1").with_ucx_tls("shm,cma,self");
        assert_eq!(c.server_args(), ["--tls", "shm,cma,self"]);
        assert_eq!(UcxConfig::SERVER.name, "proxystore-ucx-server");
        assert_eq!(UcxConfig::SERVER.env, "PROXYSTORE_UCX_SERVER");
    }

    #[test]
    fn tls() {
        assert!(tls_is_tcp_only("tcp"));
        assert!(tls_is_tcp_only("tcp,self"));
        assert!(!tls_is_tcp_only("shm,cma,self"));
        assert!(!tls_is_tcp_only("self"));
        assert!(!tls_is_tcp_only("tcp,rc"));
        assert!(tls_is_shm_only("shm,cma,self"));
        assert!(!tls_is_shm_only("shm,tcp"));
    }

    #[test]
    fn flat_config_without_defaults_or_secret() {
        let c = UcxConfig::new("h:1").with_ucx_tls("tcp").with_secret("pw");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v, serde_json::json!({"server": "h:1", "ucx_tls": "tcp"}));
        let back: UcxConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back.client.server, "h:1");
        assert_eq!(back.client.secret, None);
    }
}
