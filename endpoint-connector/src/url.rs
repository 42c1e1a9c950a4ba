//! Store URLs of scheme `endpoint`:
//! `endpoint://UUID[,UUID...][?proxystore_dir=DIR&timeout_ms=N&connect_timeout_ms=N]`.

use proxy_core::url::{QueryKey, StoreUrl, value};
use proxy_core::{ConnectorConfig, Result};

use crate::KIND;
use crate::connector::EndpointOptions;

const QUERY_KEYS: &[QueryKey<EndpointOptions>] = &proxy_core::query_keys![EndpointOptions;
    proxystore_dir: value::some_text,
    connect_timeout_ms: value::number,
    timeout_ms: value::number,
];

/// The configuration of an `endpoint://` URL: the endpoint UUIDs (the first
/// one configured and answering on this host is used), comma-separated.
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let list = url.rest().trim_end_matches('/');
    if list.is_empty() || list.contains(['@', '/']) {
        return Err(url.error(
            Some(KIND),
            "an endpoint URL names endpoint UUIDs: endpoint://UUID[,UUID...]",
        ));
    }
    let mut endpoints = Vec::new();
    for e in list.split(',') {
        let id = uuid::Uuid::parse_str(e.trim()).map_err(|err| {
            url.error(Some(KIND), format!("{e:?} is not an endpoint UUID: {err}"))
        })?;
        endpoints.push(id.to_string());
    }
    let mut opts = EndpointOptions::new(endpoints);
    url.apply_query(KIND, &mut opts, QUERY_KEYS)?;
    Ok(ConnectorConfig::new(KIND, &opts))
}

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    use super::*;

    #[test]
    fn urls() {
        crate::register();
        let r = registry::connector_config_from_url(
            "endpoint://774ebd02-b442-4dea-870b-843b74b67737,853a8318-e1a0-4b98-992e-dd5f7e20f678?proxystore_dir=/tmp/ps&timeout_ms=5000",
        )
        .unwrap();
        let o: EndpointOptions = r.options().unwrap();
        assert_eq!(o.endpoints.len(), 2);
        assert_eq!(o.proxystore_dir.as_deref(), Some("/tmp/ps"));
        assert_eq!(o.timeout_ms, 5000);
        for (bad, why) in [
            ("endpoint://", "names endpoint UUIDs"),
            ("endpoint://not-a-uuid", "not an endpoint UUID"),
            (
                "endpoint://774ebd02-b442-4dea-870b-843b74b67737?db=1",
                "unknown query key",
            ),
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
