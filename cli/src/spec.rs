//! Store specifications: URLs and TOML files.

use std::path::Path;

use proxy_core::{StoreConfig, registry};

/// Make every connector kind (and store URL scheme) this tool links known to
/// this process: the one list of `proxystore-connectors`, shared with the C
/// ABI, Python and the benchmarks.
pub use proxystore_connectors::register_all;

/// The store configuration from `--store URL`, `--config FILE`, or neither (an
/// error). Call [`register_all`] first: URL schemes are those registered.
pub fn store_config(url: Option<&str>, file: Option<&Path>) -> Result<StoreConfig, String> {
    match (url, file) {
        (_, Some(f)) => StoreConfig::read_toml(f).map_err(|e| e.to_string()),
        (Some(u), None) => from_url(u),
        (None, None) => Err(format!(
            "no store given: use --store URL (schemes: {}; e.g. file:///DIR, redis://HOST:PORT/DB, ucx://HOST:PORT, ofi://HOST:PORT, margo://HOST:PORT, daos://POOL/CONTAINER), --config FILE, or $PROXYSTORE_STORE",
            registry::registered_schemes().join(", ")
        )),
    }
}

/// A store named `cli` over the connector the URL names (by the parser its
/// connector crate registered for the scheme).
pub fn from_url(url: &str) -> Result<StoreConfig, String> {
    registry::store_config_from_url("cli", url).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        register_all();
        let c = from_url("file:///dev/shm/x").unwrap();
        assert_eq!(c.connector.kind, "file");
        assert_eq!(c.connector.options["dir"], "/dev/shm/x");
        assert!(from_url("file://relative").is_err());
        assert!(from_url("nope").is_err());
        assert_eq!(
            from_url("ucx://10.0.0.1:7700").unwrap().connector.options["server"],
            "10.0.0.1:7700"
        );
        assert!(from_url("ucx://").is_err());
        let o = from_url("ofi://10.0.0.3:7701").unwrap().connector;
        assert_eq!(
            (o.kind.as_str(), &o.options["server"]),
            ("ofi", &"10.0.0.3:7701".into())
        );
        assert!(from_url("ofi://host").is_err());
        let r = from_url("redis://alice:s3cret@10.0.0.2:6380/3")
            .unwrap()
            .connector;
        assert_eq!((r.kind.as_str(), &r.options["db"]), ("redis", &3.into()));
        let e = from_url("redis://bob:pw@host:notaport").unwrap_err();
        assert!(e.contains("bad Redis port") && !e.contains("pw@"), "{e}");
        // Options in the query, through every scheme's one table of keys.
        let o = from_url("ucx://10.0.0.1:7700?zero_copy=false&timeout_ms=30000")
            .unwrap()
            .connector;
        assert_eq!(
            (&o.options["zero_copy"], &o.options["timeout_ms"]),
            (&false.into(), &30000.into())
        );
        let o = from_url("redis://h/0?prefix=run1%3A").unwrap().connector;
        assert_eq!(o.options["prefix"], "run1:");
        let o = from_url("daos://p/c?layout=pydaos").unwrap().connector;
        assert_eq!(o.options["layout"], "pydaos");
        for (bad, why) in [
            (
                "ofi://h:1?zero_copy=sometimes",
                "bad value \"sometimes\" for query key zero_copy",
            ),
            ("margo://h:1?protcol=na+sm", "unknown query key \"protcol\""),
            (
                "file:///x?clear=1&clear=0",
                "query key clear is given twice",
            ),
        ] {
            let e = from_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // Every registered scheme is listed, redis included.
        let e = from_url("gopher://x").unwrap_err();
        assert!(
            e.contains("unsupported store URL scheme 'gopher'")
                && e.contains("endpoint, file, margo, ofi, redis, redis+cluster, ucx"),
            "{e}"
        );
    }
}
