//! Store URLs: `file:///DIR`, `redis://[user[:password]@]HOST[:PORT][/DB]`,
//! `ucx://HOST:PORT` (the same forms as the `proxystore` command-line tool).

use proxy_core::{ConnectorConfig, Error, Result, StoreConfig};

fn bad(reason: String) -> Error {
    Error::InvalidConfig {
        connector: None,
        reason,
    }
}

/// The configuration of a store named `name` at `url`.
pub(crate) fn store_config(name: &str, url: &str) -> Result<StoreConfig> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad(format!(
            "{url:?} is not a store URL (file:///DIR, redis://HOST:PORT/DB or ucx://HOST:PORT)"
        ))
    })?;
    let connector = match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(bad(format!(
                    "file URL needs an absolute path: file:///dir, got {url:?}"
                )));
            }
            ConnectorConfig::new("file", serde_json::json!({ "dir": rest }))
        }
        "redis" => redis_options(rest).map_err(|e| bad(format!("{e} in {}", redacted(url))))?,
        "ucx" => {
            let server = rest.trim_end_matches('/');
            if server.is_empty() || !server.contains(':') {
                return Err(bad(format!(
                    "ucx URL needs the object server's host:port: ucx://HOST:PORT, got {url:?}"
                )));
            }
            ConnectorConfig::new("ucx", serde_json::json!({ "server": server }))
        }
        other => {
            return Err(bad(format!(
                "unsupported store URL scheme {other:?} (supported: file, redis, ucx)"
            )));
        }
    };
    Ok(StoreConfig::new(name, connector))
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
fn redis_options(rest: &str) -> std::result::Result<ConnectorConfig, String> {
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
        let c = store_config("s", "file:///dev/shm/x").unwrap();
        assert_eq!((c.name.as_str(), c.connector.kind.as_str()), ("s", "file"));
        assert_eq!(c.connector.options["dir"], "/dev/shm/x");
        assert!(store_config("s", "file://relative").is_err());
        assert!(store_config("s", "nope").is_err());
        assert!(store_config("s", "gopher://x").is_err());
        assert!(store_config("s", "ucx://").is_err());
        assert_eq!(
            store_config("s", "ucx://10.0.0.1:7700")
                .unwrap()
                .connector
                .options["server"],
            "10.0.0.1:7700"
        );
        let r = store_config("s", "redis://alice:pw@h:6380/3")
            .unwrap()
            .connector;
        assert_eq!(
            (&r.options["port"], &r.options["db"], &r.options["password"]),
            (&6380.into(), &3.into(), &"pw".into())
        );
        let e = store_config("s", "redis://bob:pw@host:notaport")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad Redis port") && !e.contains("pw@"), "{e}");
    }
}
