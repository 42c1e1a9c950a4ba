//! Store specifications: URLs and TOML files.

use std::path::Path;

use proxy_core::{ConnectorConfig, StoreConfig};

/// Make every connector kind this tool links rebuildable from a configuration.
pub fn register_all() {
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
    }
}
