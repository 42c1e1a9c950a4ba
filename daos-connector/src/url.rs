//! Store URLs of scheme `daos`:
//! `daos://POOL/CONTAINER[/NAMESPACE][?oclass=SX&chunk_size=BYTES&timeout_ms=MS&max_in_flight=N&system=NAME&layout=array|pydaos]`.

use proxy_core::url::StoreUrl;
use proxy_core::{ConnectorConfig, Result};

use crate::{DaosOptions, KIND};

pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let (path, query) = match url.rest().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url.rest(), None),
    };
    let mut parts = path.splitn(3, '/');
    let (Some(pool), Some(cont)) = (parts.next(), parts.next()) else {
        return Err(url.error(
            Some(KIND),
            "a DAOS URL names a pool and a container: daos://POOL/CONTAINER[/NAMESPACE]",
        ));
    };
    if pool.is_empty() || cont.is_empty() {
        return Err(url.error(
            Some(KIND),
            "a DAOS URL names a pool and a container: daos://POOL/CONTAINER[/NAMESPACE]",
        ));
    }
    let mut o = DaosOptions::new(pool, cont).namespace(parts.next().unwrap_or(""));
    for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let num = |what: &str| {
            v.parse::<u64>()
                .map_err(|_| url.error(Some(KIND), format!("{what} must be a number, not {v:?}")))
        };
        match k {
            "oclass" => o.oclass = Some(v.to_string()),
            "system" => o.system = Some(v.to_string()),
            "chunk_size" => o.chunk_size = num(k)?,
            "timeout_ms" => o.timeout_ms = num(k)?,
            "max_in_flight" => o.max_in_flight = num(k)? as usize,
            "layout" => {
                o.layout = match v {
                    "array" => crate::DaosLayout::Array,
                    "pydaos" => crate::DaosLayout::Pydaos,
                    _ => {
                        return Err(
                            url.error(Some(KIND), format!("layout is array or pydaos, not {v:?}"))
                        );
                    }
                }
            }
            other => {
                return Err(url.error(
                    Some(KIND),
                    format!(
                        "unknown DAOS URL parameter {other:?} (known: oclass, system, chunk_size, timeout_ms, max_in_flight, layout)"
                    ),
                ));
            }
        }
    }
    Ok(ConnectorConfig::new(KIND, &o))
}

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    #[test]
    fn urls_become_configurations() {
        crate::register();
        let c = registry::connector_config_from_url("daos://p1/c1/ns/x?oclass=SX&chunk_size=4096")
            .unwrap();
        let o: crate::DaosOptions = c.options().unwrap();
        assert_eq!((o.pool.as_str(), o.container.as_str()), ("p1", "c1"));
        assert_eq!(o.namespace, "ns/x");
        assert_eq!(o.oclass.as_deref(), Some("SX"));
        assert_eq!(o.chunk_size, 4096);
        assert_eq!(o.timeout_ms, crate::config::DEFAULT_TIMEOUT_MS);
        assert_eq!(o.layout, crate::DaosLayout::Array);
        let c = registry::connector_config_from_url("daos://p1/c1/ns?layout=pydaos").unwrap();
        let o: crate::DaosOptions = c.options().unwrap();
        assert_eq!(o.layout, crate::DaosLayout::Pydaos);
        for bad in [
            "daos://p1",
            "daos:///c",
            "daos://p/c?nope=1",
            "daos://p/c?chunk_size=x",
            "daos://p/c/ns?layout=kv",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("daos"), "{bad}: {e}");
        }
    }
}
