//! Connector kinds and store URL schemes known to this process.
//!
//! - A **kind** (`"file"`, `"redis"`, ...) rebuilds a connector from its
//!   [`ConnectorConfig`]: what a proxy does in the process that resolves it.
//! - A **scheme** (`file://`, `redis://`, ...) turns a store URL into a
//!   [`ConnectorConfig`]: what the command-line tool and the benchmarks do
//!   with the URLs people type.
//!
//! The built-in connectors (local, file, multi; scheme `file`) are always
//! known. Each connector crate offers a `register()` that registers its kind
//! and its scheme(s): `register_connector::<C>()` and one
//! [`register_scheme`] per scheme, with a [`UrlParser`]:
//!
//! ```
//! use proxy_core::{ConnectorConfig, registry, url::StoreUrl};
//!
//! /// `shm://NAME`: a file store in `/dev/shm/NAME`.
//! fn shm_url(url: &StoreUrl<'_>) -> proxy_core::Result<ConnectorConfig> {
//!     if url.host().is_empty() {
//!         return Err(url.error(Some("file"), "shm URL needs a name: shm://NAME"));
//!     }
//!     let dir = format!("/dev/shm/{}", url.host());
//!     Ok(ConnectorConfig::new("file", serde_json::json!({ "dir": dir })))
//! }
//!
//! registry::register_scheme("shm", shm_url);
//! let cfg = registry::connector_config_from_url("shm://scratch")?;
//! assert_eq!((cfg.kind.as_str(), &cfg.options["dir"]), ("file", &"/dev/shm/scratch".into()));
//! assert!(registry::connector_config_from_url("shm://").is_err());
//! # Ok::<(), proxy_core::Error>(())
//! ```
//!
//! Named stores are in [`stores`](crate::stores), which builds on this
//! module (and never the other way round).

use std::collections::HashMap;
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::RwLock;

use crate::config::StoreConfig;
use crate::connector::{ConnectorConfig, DynConnector, FromConfig};
use crate::error::{Error, Result};
use crate::url::StoreUrl;

type Builder = fn(&ConnectorConfig) -> Result<DynConnector>;

/// A connector's store-URL parser: the URL's parts to the configuration of
/// the connector that serves the scheme. Report malformed URLs with
/// [`StoreUrl::error`] (it never shows the password).
pub type UrlParser = fn(&StoreUrl<'_>) -> Result<ConnectorConfig>;

fn build<C: FromConfig>(cfg: &ConnectorConfig) -> Result<DynConnector> {
    cfg.expect_kind(C::KIND)?;
    Ok(Arc::new(C::from_config(cfg)?))
}

struct Known {
    kinds: HashMap<&'static str, Builder>,
    schemes: HashMap<&'static str, UrlParser>,
}

static KNOWN: Lazy<RwLock<Known>> = Lazy::new(|| {
    let mut kinds: HashMap<&'static str, Builder> = HashMap::new();
    kinds.insert(crate::LocalConnector::KIND, build::<crate::LocalConnector>);
    kinds.insert(crate::FileConnector::KIND, build::<crate::FileConnector>);
    kinds.insert(crate::MultiConnector::KIND, build::<crate::MultiConnector>);
    let mut schemes: HashMap<&'static str, UrlParser> = HashMap::new();
    schemes.insert(
        crate::connectors::file::KIND,
        crate::connectors::file::config_from_url,
    );
    RwLock::new(Known { kinds, schemes })
});

/// Make connector type `C` rebuildable from configurations of kind `C::KIND`
/// in this process. Idempotent.
pub fn register_connector<C: FromConfig>() {
    KNOWN.write().kinds.insert(C::KIND, build::<C>);
}

/// Make store URLs of `scheme` (without `://`, compared case-insensitively)
/// parse with `parse`. Registering a scheme again replaces its parser.
pub fn register_scheme(scheme: &'static str, parse: UrlParser) {
    KNOWN.write().schemes.insert(scheme, parse);
}

/// The connector kinds this process can rebuild, sorted.
pub fn registered_kinds() -> Vec<&'static str> {
    let mut v: Vec<_> = KNOWN.read().kinds.keys().copied().collect();
    v.sort_unstable();
    v
}

/// The store URL schemes this process can parse, sorted.
pub fn registered_schemes() -> Vec<&'static str> {
    let mut v: Vec<_> = KNOWN.read().schemes.keys().copied().collect();
    v.sort_unstable();
    v
}

/// Build a connector from its configuration.
pub fn connector_from_config(cfg: &ConnectorConfig) -> Result<DynConnector> {
    let builder = KNOWN.read().kinds.get(cfg.kind.as_str()).copied();
    match builder {
        Some(b) => b(cfg),
        None => Err(Error::UnknownConnector {
            kind: cfg.kind.clone(),
            known: registered_kinds().join(", "),
        }),
    }
}

/// The connector configuration a store URL names (`file:///dev/shm/x`,
/// `redis://host:6379/0`, ...), by the parser registered for its scheme.
/// Nothing is connected or created.
pub fn connector_config_from_url(url: &str) -> Result<ConnectorConfig> {
    let parsed = StoreUrl::parse(url)?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let parser = KNOWN.read().schemes.get(scheme.as_str()).copied();
    match parser {
        Some(parse) => parse(&parsed),
        None => Err(Error::UnknownScheme {
            scheme,
            known: registered_schemes().join(", "),
        }),
    }
}

/// A store named `name` over the connector a store URL names (see
/// [`connector_config_from_url`]), with the store's own query key taken out
/// of the URL before its scheme's parser sees it:
///
/// - `cache=SIZE`: the in-process cache budget ([`size`](crate::size) syntax,
///   `64M`); `cache=0` turns the cache off, so a get after another process
///   evicted the object misses (see [`Store`](crate::Store)'s cache).
///
/// ```
/// use proxy_core::registry::store_config_from_url;
/// let c = store_config_from_url("s", "file:///dev/shm/x?cache=0")?;
/// assert_eq!((c.cache_bytes, &c.connector.options["dir"]), (0, &"/dev/shm/x".into()));
/// assert_eq!(store_config_from_url("s", "file:///dev/shm/x?cache=1M")?.cache_bytes, 1 << 20);
/// assert!(store_config_from_url("s", "file:///dev/shm/x?cache=lots").is_err());
/// # Ok::<(), proxy_core::Error>(())
/// ```
pub fn store_config_from_url(name: &str, url: &str) -> Result<StoreConfig> {
    let (connector, cache) = connector_config_from_store_url(url)?;
    let mut config = StoreConfig::new(name, connector);
    if let Some(bytes) = cache {
        config.cache_bytes = bytes;
    }
    Ok(config)
}

/// The connector configuration of a store URL and its `cache=SIZE` budget
/// (`None` when the URL has no `cache` key): for bindings whose stores are
/// not [`crate::Store`]s (the Python ProxyStore's) and that apply the budget
/// their own way.
pub fn connector_config_from_store_url(url: &str) -> Result<(ConnectorConfig, Option<u64>)> {
    let (connector_url, cache) = take_store_keys(url)?;
    Ok((connector_config_from_url(&connector_url)?, cache))
}

/// `url` without its `cache=` query pairs, and the last one's size.
fn take_store_keys(url: &str) -> Result<(String, Option<u64>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut cache = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("cache", v)) => {
                let bytes = crate::size::parse_size(v).map_err(|e| {
                    StoreUrl::parse(url).map_or_else(
                        |parse| parse,
                        |u| u.error(None, format!("query key cache: {e}")),
                    )
                })?;
                cache = Some(bytes);
            }
            _ => rest.push(pair),
        }
    }
    let connector_url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((connector_url, cache))
}

/// Build the connector a store URL names (see [`connector_config_from_url`]).
pub fn connector_from_url(url: &str) -> Result<DynConnector> {
    connector_from_config(&connector_config_from_url(url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let c = connector_config_from_url("FILE:///dev/shm/x").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["dir"]),
            ("file", &"/dev/shm/x".into())
        );
        let e = connector_config_from_url("file://relative").unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
        let c = connector_config_from_url("file:///dev/shm/x?clear=true").unwrap();
        assert_eq!(
            (&c.options["dir"], &c.options["clear"]),
            (&"/dev/shm/x".into(), &true.into())
        );
        let c = connector_config_from_url("file:///dev/shm/x?clear=false").unwrap();
        assert_eq!(c.options["clear"], false);
        for (bad, why) in [
            (
                "file:///x?clear=yes",
                "bad value \"yes\" for query key clear",
            ),
            (
                "file:///x?dir=/y",
                "unknown query key \"dir\" (a file URL accepts clear)",
            ),
            ("file:///x?clear", "query pair \"clear\" has no value"),
        ] {
            match connector_config_from_url(bad).unwrap_err() {
                Error::InvalidConfig { connector, reason } => {
                    assert_eq!(connector.as_deref(), Some("file"), "{bad}");
                    assert!(reason.contains(why), "{bad}: {reason}");
                }
                other => panic!("{bad}: {other}"),
            }
        }
        match connector_config_from_url("gopher://u:pw@x").unwrap_err() {
            Error::UnknownScheme { scheme, known } => {
                assert_eq!(scheme, "gopher");
                assert!(known.split(", ").any(|s| s == "file"), "{known}");
            }
            other => panic!("{other}"),
        }
        fn parse_test(u: &StoreUrl<'_>) -> Result<ConnectorConfig> {
            Ok(ConnectorConfig::new(
                "file",
                serde_json::json!({ "dir": format!("/tmp/{}", u.host()) }),
            ))
        }
        register_scheme("registry-test", parse_test);
        assert!(registered_schemes().contains(&"registry-test"));
        let c = connector_config_from_url("registry-test://here").unwrap();
        assert_eq!(c.options["dir"], "/tmp/here");
    }
}
