//! Store URLs of scheme `daos`:
//! `daos://POOL/CONTAINER[/NAMESPACE][?KEY=VALUE&...]` (query keys: `QUERY_KEYS`,
//! listed in the crate README).

use proxy_core::ConnectorConfig;
use proxy_core::url::{QueryKey, StoreUrl, value};

use crate::{DaosLayout, DaosOptions, KIND};

/// The query keys of a `daos://` URL: the [`DaosOptions`] fields that are
/// not in its path.
const QUERY_KEYS: &[QueryKey<DaosOptions>] = &proxy_core::query_keys![DaosOptions;
    oclass: value::some_text,
    system: value::some_text,
    chunk_size: value::size,
    timeout_ms: value::number,
    max_in_flight: value::number,
    layout: layout,
];

fn layout(v: &str) -> Result<DaosLayout, String> {
    value::one_of(
        v,
        &[("array", DaosLayout::Array), ("pydaos", DaosLayout::Pydaos)],
    )
}

pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> proxy_core::Result<ConnectorConfig> {
    let mut parts = url.rest().splitn(3, '/');
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
    url.apply_query(KIND, &mut o, QUERY_KEYS)?;
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
        let c = registry::connector_config_from_url(
            "daos://p1/c1?system=daos_server&timeout_ms=50&max_in_flight=3&chunk_size=1MiB",
        )
        .unwrap();
        let o: crate::DaosOptions = c.options().unwrap();
        assert_eq!(o.namespace, "");
        assert_eq!(o.system.as_deref(), Some("daos_server"));
        assert_eq!(
            (o.timeout_ms, o.max_in_flight, o.chunk_size),
            (50, 3, 1 << 20)
        );
        for (bad, why) in [
            (
                "daos://p/c?nope=1",
                "unknown query key \"nope\" (a daos URL accepts oclass, system, chunk_size, timeout_ms, max_in_flight, layout)",
            ),
            (
                "daos://p/c?chunk_size=x",
                "query key chunk_size: not a size",
            ),
            (
                "daos://p/c?max_in_flight=-2",
                "query key max_in_flight: expected a whole number",
            ),
            (
                "daos://p/c/ns?layout=kv",
                "query key layout: expected one of array, pydaos",
            ),
            (
                "daos://p/c?oclass=",
                "query key oclass: expected a non-empty value",
            ),
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
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
