//! Store URLs of scheme `redis+cluster`:
//! `redis+cluster://[user[:password]@]host[:port][,host[:port]...][?KEY=VALUE&...]`.

use proxy_core::url::{QueryKey, StoreUrl, value};
use proxy_core::{ConnectorConfig, Result};

use super::KIND;
use super::options::ClusterOptions;
use super::slots::join_addr;

const QUERY_KEYS: &[QueryKey<ClusterOptions>] = &proxy_core::query_keys![ClusterOptions;
    prefix: value::text,
    connect_timeout_ms: value::number,
    timeout_ms: value::number,
    failover_timeout_ms: value::number,
    chunk_size: value::size,
    clear: value::flag,
    max_object_size: value::size,
    recv_pool_bytes: value::size,
];

/// One `host[:port]` of the node list (port 6379 unless given).
fn node(url: &StoreUrl<'_>, s: &str) -> Result<String> {
    let bad = || {
        url.error(
            Some(KIND),
            format!("bad Redis Cluster node {s:?}: expected HOST[:PORT]"),
        )
    };
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
        (h, rest.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        None => 6379,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
    };
    Ok(join_addr(host, port))
}

/// The connector configuration of a `redis+cluster://` URL: the seed nodes
/// (any one reachable node is enough), comma-separated. No database number:
/// a cluster has only database 0. As with `redis://`, a lone user part is
/// the password, kept only for building the connector in this process.
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    if !matches!(url.path(), "" | "/" | "/0") {
        return Err(url.error(
            Some(KIND),
            "a Redis Cluster has only database 0: redis+cluster://HOST:PORT[,HOST:PORT...]",
        ));
    }
    if url.authority().is_empty() {
        return Err(url.error(
            Some(KIND),
            "a Redis Cluster URL needs at least one node: redis+cluster://HOST:PORT[,HOST:PORT...]",
        ));
    }
    let nodes = url
        .authority()
        .split(',')
        .map(|s| node(url, s.trim()))
        .collect::<Result<Vec<_>>>()?;
    let (username, password) = crate::url::credentials(url);
    let mut opts = ClusterOptions::new(nodes);
    opts.username = username.map(str::to_string);
    url.apply_query(KIND, &mut opts, QUERY_KEYS)?;
    Ok(crate::url::with_password(
        ConnectorConfig::new(KIND, &opts),
        password,
    ))
}

#[cfg(test)]
mod tests {
    use proxy_core::registry;

    use super::*;

    #[test]
    fn urls() {
        crate::register();
        let r = registry::connector_config_from_url(
            "redis+cluster://alice:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002?chunk_size=8MiB&failover_timeout_ms=5000",
        )
        .unwrap();
        assert_eq!(r.kind, KIND);
        let o: ClusterOptions = r.options().unwrap();
        assert_eq!(o.nodes, ["10.0.0.1:7000", "10.0.0.2:6379", "[::1]:7002"]);
        assert_eq!(o.username.as_deref(), Some("alice"));
        assert_eq!(r.options["password"], "s3cret");
        assert_eq!((o.chunk_size, o.failover_timeout_ms), (8 << 20, 5000));
        for (bad, why) in [
            ("redis+cluster://", "at least one node"),
            ("redis+cluster://h:1,,h:2", "bad Redis Cluster node \"\""),
            ("redis+cluster://pw@h:x", "bad Redis Cluster node \"h:x\""),
            ("redis+cluster://h:1/3", "only database 0"),
            ("redis+cluster://h:1?db=2", "unknown query key \"db\""),
            ("redis+cluster://h:1?chunk_size=0", "chunk_size"),
        ] {
            let e = registry::connector_from_url(bad).unwrap_err().to_string();
            assert!(e.contains(why) && !e.contains("pw@"), "{bad}: {e}");
        }
        assert!(registry::registered_schemes().contains(&KIND));
    }
}
