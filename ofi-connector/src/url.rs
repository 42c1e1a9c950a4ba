//! Store URLs of scheme `ofi`: `ofi://HOST:PORT`, the control address of a
//! running `proxystore-ofi-server` or `proxystore-server` (its `LISTEN` line).

use proxy_core::url::StoreUrl;
use proxy_core::{ConnectorConfig, Result};

use crate::{KIND, OfiConfig};

/// The connector configuration of an `ofi://HOST:PORT` URL: [`OfiConfig`]
/// with that server and default options (the provider then comes from
/// `FI_PROVIDER` in each process, or libfabric's first choice).
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let server = url.authority();
    let path = url.path().trim_end_matches('/');
    if url.host().is_empty() || url.port_text().is_none() || !path.is_empty() {
        return Err(url.error(
            Some(KIND),
            "an ofi URL names the object server's control address: ofi://HOST:PORT",
        ));
    }
    url.port_or(0, "libfabric object server")?;
    if url.user().is_some() || url.password().is_some() {
        return Err(url.error(Some(KIND), "an ofi URL takes no user or password"));
    }
    Ok(ConnectorConfig::new(KIND, OfiConfig::new(server)))
}

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    #[test]
    fn urls() {
        crate::register();
        let c = registry::connector_config_from_url("ofi://10.0.0.1:7700/").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["server"]),
            ("ofi", &"10.0.0.1:7700".into())
        );
        let o: crate::OfiConfig = c.options().unwrap();
        assert_eq!(o, crate::OfiConfig::new("10.0.0.1:7700"));
        for bad in [
            "ofi://",
            "ofi://host",
            "ofi://:7700",
            "ofi://host:port",
            "ofi://host:7700/x",
            "ofi://u:pw@host:7700",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("ofi") && !e.contains("pw@"), "{bad}: {e}");
        }
    }
}
