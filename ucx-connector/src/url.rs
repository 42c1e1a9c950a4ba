//! Store URLs of scheme `ucx`: `ucx://HOST:PORT`, the control address of a
//! running `proxystore-ucx-server` (its `LISTEN` line).

use proxy_core::url::StoreUrl;
use proxy_core::{ConnectorConfig, Result};

use crate::{KIND, UcxConfig};

/// The connector configuration of a `ucx://HOST:PORT` URL: [`UcxConfig`]
/// with that server and default options.
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let server = url.authority();
    let path = url.path().trim_end_matches('/');
    if url.host().is_empty() || url.port_text().is_none() || !path.is_empty() {
        return Err(url.error(
            Some(KIND),
            "a ucx URL names the object server's control address: ucx://HOST:PORT",
        ));
    }
    url.port_or(0, "UCX server")?;
    if url.user().is_some() || url.password().is_some() {
        return Err(url.error(Some(KIND), "a ucx URL takes no user or password"));
    }
    Ok(ConnectorConfig::new(KIND, UcxConfig::new(server)))
}

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    #[test]
    fn urls() {
        crate::register();
        let c = registry::connector_config_from_url("ucx://10.0.0.1:7700/").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["server"]),
            ("ucx", &"10.0.0.1:7700".into())
        );
        let o: crate::UcxConfig = c.options().unwrap();
        assert_eq!(o, crate::UcxConfig::new("10.0.0.1:7700"));
        for bad in [
            "ucx://",
            "ucx://host",
            "ucx://:7700",
            "ucx://host:port",
            "ucx://host:7700/x",
            "ucx://u:pw@host:7700",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("ucx") && !e.contains("pw@"), "{bad}: {e}");
        }
    }
}
