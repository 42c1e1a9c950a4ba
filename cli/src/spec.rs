//! Store specifications: URLs and TOML files.

use std::path::Path;

use proxy_core::{ConnectorConfig, StoreConfig};

/// Make every connector kind this tool links rebuildable from a configuration.
pub fn register_all() {
    redis_connector::register();
    ucx_connector::register();
}

/// The store configuration from `--store URL`, `--config FILE`, or neither (an error).
pub fn store_config(url: Option<&str>, file: Option<&Path>) -> Result<StoreConfig, String> {
    match (url, file) {
        (_, Some(f)) => StoreConfig::read_toml(f).map_err(|e| e.to_string()),
        (Some(u), None) => from_url(u),
        (None, None) => Err("no store given: use --store URL (file:///DIR, redis://HOST:PORT/DB), --config FILE, or $PROXYSTORE_STORE".into()),
    }
}

/// `file:///dir`, `ucx://host:port` (a running proxystore-ucx-server), or
/// `redis://[user:password@]host[:port][/db]`.
pub fn from_url(url: &str) -> Result<StoreConfig, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("{url:?} is not a store URL (file:///DIR or redis://HOST:PORT/DB)")
    })?;
    let connector = match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(format!(
                    "file URL needs an absolute path: file:///dir, got {url:?}"
                ));
            }
            ConnectorConfig::new("file", serde_json::json!({ "dir": rest }))
        }
        "redis" => redis_options(rest).map_err(|e| format!("{e} in {}", redacted(url)))?,
        "ucx" => {
            let server = rest.trim_end_matches('/');
            if server.is_empty() || !server.contains(':') {
                return Err(format!(
                    "ucx URL needs the object server's host:port: ucx://HOST:PORT, got {url:?}"
                ));
            }
            ConnectorConfig::new("ucx", serde_json::json!({ "server": server }))
        }
        other => {
            return Err(format!(
                "unsupported store URL scheme {other:?} (supported: file, ucx)"
            ));
        }
    };
    Ok(StoreConfig::new("cli", connector))
}

/// The URL with any password replaced by `***` (for messages).
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (auth, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = auth.split_once(':').map_or(auth, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// `[user[:password]@]host[:port][/db]` → Redis connector options.
fn redis_options(rest: &str) -> Result<ConnectorConfig, String> {
    let (auth, hostpart) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (hostport, db) = match hostpart.split_once('/') {
        Some((hp, db)) if !db.is_empty() => (
            hp,
            db.parse::<i64>()
                .map_err(|_| format!("bad Redis database number {db:?}"))?,
        ),
        Some((hp, _)) => (hp, 0),
        None => (hostpart, 0),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad Redis port {p:?}"))?,
        ),
        None => (hostport, 6379),
    };
    if host.is_empty() {
        return Err("Redis URL has no host".into());
    }
    let mut o = serde_json::json!({ "host": host, "port": port, "db": db });
    if let Some(a) = auth {
        let (user, pass) = match a.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => ("", Some(a)),
        };
        if !user.is_empty() {
            o["username"] = user.into();
        }
        if let Some(p) = pass.filter(|p| !p.is_empty()) {
            o["password"] = p.into();
        }
    }
    Ok(ConnectorConfig::new("redis", o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = from_url("file:///dev/shm/x").unwrap();
        assert_eq!(c.connector.kind, "file");
        assert_eq!(c.connector.options["dir"], "/dev/shm/x");
        assert!(from_url("file://relative").is_err());
        assert!(from_url("nope").is_err());
        assert!(from_url("gopher://x").is_err());
        assert_eq!(
            from_url("ucx://10.0.0.1:7700").unwrap().connector.options["server"],
            "10.0.0.1:7700"
        );
        assert!(from_url("ucx://").is_err());
        let r = from_url("redis://alice:s3cret@10.0.0.2:6380/3")
            .unwrap()
            .connector;
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
        let r = from_url("redis://localhost").unwrap().connector;
        assert_eq!(
            (&r.options["port"], &r.options["db"]),
            (&6379.into(), &0.into())
        );
        let e = from_url("redis://bob:pw@host:notaport").unwrap_err();
        assert!(e.contains("bad Redis port") && !e.contains("pw@"), "{e}");
    }
}
