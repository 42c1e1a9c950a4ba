//! Store URLs of scheme `redis`:
//! `redis://[user[:password]@]host[:port][/db][?KEY=VALUE&...]`.

use proxy_core::url::{QueryKey, StoreUrl, value};
use proxy_core::{ConnectorConfig, Result};

use crate::{KIND, RedisOptions};

/// The query keys of a `redis://` URL: the [`RedisOptions`] fields that are
/// not in the URL's other parts (the password never is a query key).
const QUERY_KEYS: &[QueryKey<RedisOptions>] = &proxy_core::query_keys![RedisOptions;
    prefix: value::text,
    connect_timeout_ms: value::number,
    timeout_ms: value::number,
    clear: value::flag,
    max_object_size: value::size,
    recv_pool_bytes: value::size,
];

/// The connector configuration of a `redis://` URL. Port 6379 and database 0
/// unless given; a lone user part (`redis://secret@host`) is the password, as
/// with `redis-cli -u`. The password, if any, is kept in the configuration
/// only for building the connector here: [`Connector::config`] never writes
/// it (see the crate docs).
///
/// [`Connector::config`]: proxy_core::Connector::config
pub(crate) fn config_from_url(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let host = url.host();
    if host.is_empty() {
        return Err(url.error(
            Some(KIND),
            "a Redis URL needs a host: redis://HOST[:PORT][/DB]",
        ));
    }
    let port = url.port_or(6379, "Redis")?;
    let db =
        match url.path().trim_start_matches('/') {
            "" => 0,
            db => db.parse::<i64>().ok().filter(|&d| d >= 0).ok_or_else(|| {
                url.error(Some(KIND), format!("bad Redis database number {db:?}"))
            })?,
        };
    let (username, password) = credentials(url);
    let mut opts = RedisOptions {
        host: host.to_string(),
        port,
        db,
        username: username.map(str::to_string),
        password: password.map(str::to_string),
        ..RedisOptions::default()
    };
    url.apply_query(KIND, &mut opts, QUERY_KEYS)?;
    Ok(with_password(ConnectorConfig::new(KIND, &opts), password))
}

/// `(user, password)` of a URL; a lone user part (`redis://secret@host`) is
/// the password, as with `redis-cli -u`.
pub(crate) fn credentials<'a>(url: &StoreUrl<'a>) -> (Option<&'a str>, Option<&'a str>) {
    match (url.user(), url.password()) {
        (Some(lone), None) => (None, Some(lone)),
        (user, password) => (user, password),
    }
}

/// The options never serialize their password: add it to the configuration
/// here, where it is read back by this process only.
pub(crate) fn with_password(mut cfg: ConnectorConfig, password: Option<&str>) -> ConnectorConfig {
    if let Some(p) = password {
        cfg.options["password"] = p.into();
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy_core::registry;

    #[test]
    fn urls() {
        crate::register();
        let r =
            registry::connector_config_from_url("redis://alice:s3cret@10.0.0.2:6380/3").unwrap();
        assert_eq!(
            (
                r.kind.as_str(),
                &r.options["host"],
                &r.options["port"],
                &r.options["db"],
                &r.options["username"],
                &r.options["password"]
            ),
            (
                "redis",
                &"10.0.0.2".into(),
                &6380.into(),
                &3.into(),
                &"alice".into(),
                &"s3cret".into()
            )
        );
        let r = registry::connector_config_from_url("redis://localhost").unwrap();
        let o: RedisOptions = r.options().unwrap();
        assert_eq!((o.host.as_str(), o.port, o.db), ("localhost", 6379, 0));
        let r = registry::connector_config_from_url("redis://pw-only@h/").unwrap();
        let o: RedisOptions = r.options().unwrap();
        assert_eq!((o.username, o.password.as_deref()), (None, Some("pw-only")));
        let r = registry::connector_config_from_url(
            "redis://bob:pw@h:7/2?prefix=job1%3A&timeout_ms=0&connect_timeout_ms=250&clear=true\
             &max_object_size=1GiB&recv_pool_bytes=0",
        )
        .unwrap();
        let o: RedisOptions = r.options().unwrap();
        assert_eq!((o.host.as_str(), o.port, o.db), ("h", 7, 2));
        assert_eq!(
            (o.prefix.as_str(), o.timeout_ms, o.connect_timeout_ms),
            ("job1:", 0, 250)
        );
        assert!(o.clear);
        assert_eq!((o.max_object_size, o.recv_pool_bytes), (1 << 30, 0));
        assert_eq!(r.options["password"], "pw");
        for (bad, why) in [
            (
                "redis://h?db=3",
                "unknown query key \"db\" (a redis URL accepts prefix, connect_timeout_ms, timeout_ms, clear, max_object_size, recv_pool_bytes)",
            ),
            ("redis://h?password=pw", "unknown query key \"password\""),
            (
                "redis://h?clear=please",
                "bad value \"please\" for query key clear: expected true or false",
            ),
            (
                "redis://h?max_object_size=big",
                "query key max_object_size: not a size",
            ),
            ("redis://bob:pw@host:notaport", "bad Redis port"),
            ("redis://bob:pw@host/x", "bad Redis database number"),
            ("redis://bob:pw@:6379", "needs a host"),
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && !e.contains("pw@"), "{e}");
        }
        assert!(registry::registered_schemes().contains(&"redis"));
    }
}
