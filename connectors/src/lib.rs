//! Every connector kind of proxystore-rs in one place.
//!
//! [`register_all`] makes each connector crate linked into this build known
//! to the process: its kind (so proxies of its stores resolve here) and its
//! store URL scheme(s) (so `scheme://...` opens). The command-line tool, the
//! benchmarks, the C ABI and the Python package call it, so every binding
//! accepts the same URLs.
//!
//! The crate graph stays one-way: this crate depends on the connectors, the
//! connectors never depend on it (nor on each other). Each connector is a
//! cargo feature (`redis` (with `redis+cluster`), `endpoint`, `ucx`, `ofi`,
//! `daos`, `margo`; all on by default). Connectors whose native library is loaded at run time (DAOS,
//! Margo) are always registered when linked: opening their URLs without the
//! library fails with a message naming what to install, never "unknown scheme".
//!
//! ```
//! proxystore_connectors::register_all();
//! let schemes = proxy_core::registry::registered_schemes();
//! for s in proxystore_connectors::SCHEMES {
//!     assert!(schemes.contains(s), "{s} missing from {schemes:?}");
//! }
//! ```

use std::sync::Once;

/// The store URL schemes this build registers (`file` is built into
/// `proxy-core`), sorted.
pub const SCHEMES: &[&str] = &[
    #[cfg(feature = "daos")]
    "daos",
    #[cfg(feature = "endpoint")]
    "endpoint",
    "file",
    #[cfg(feature = "margo")]
    "margo",
    #[cfg(feature = "ofi")]
    "ofi",
    #[cfg(feature = "redis")]
    "redis",
    #[cfg(feature = "redis")]
    "redis+cluster",
    #[cfg(feature = "ucx")]
    "ucx",
];

/// Register every linked connector kind and store URL scheme (idempotent,
/// cheap after the first call, safe from any thread).
pub fn register_all() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "redis")]
        redis_connector::register();
        #[cfg(feature = "endpoint")]
        endpoint_connector::register();
        #[cfg(feature = "ucx")]
        ucx_connector::register();
        #[cfg(feature = "ofi")]
        ofi_connector::register();
        #[cfg(feature = "daos")]
        daos_connector::register();
        #[cfg(feature = "margo")]
        margo_connector::register();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy_core::registry;

    #[test]
    fn every_scheme_and_kind_is_registered() {
        register_all();
        assert_eq!(
            registry::registered_schemes()
                .into_iter()
                .filter(|s| SCHEMES.contains(s))
                .collect::<Vec<_>>(),
            SCHEMES,
        );
        let kinds = registry::registered_kinds();
        for k in SCHEMES {
            assert!(kinds.contains(k), "kind {k} missing from {kinds:?}");
        }
    }

    /// Without their library, Margo and DAOS URLs fail with a connector
    /// error, never as an unknown scheme: DAOS when the connector is built,
    /// naming what to install; Margo at first use (its client loads Margo
    /// when it first needs the fabric, after reaching its server), naming
    /// what to install or the server it could not reach.
    #[test]
    fn runtime_loaded_schemes_say_what_is_missing() {
        register_all();
        let missing: Vec<(Result<(), String>, &str, &[&str])> = vec![
            #[cfg(feature = "margo")]
            (
                margo_connector::available().map_err(|e| e.to_string()),
                "margo://127.0.0.1:1",
                &["Margo is not available", "object server 127.0.0.1:1"],
            ),
            #[cfg(feature = "daos")]
            (
                daos_connector::available(),
                "daos://pool/container",
                &["DAOS is not available"],
            ),
        ];
        for (available, url, messages) in missing {
            let Err(why) = available else { continue };
            assert!(
                why.contains("not available") && why.contains("install"),
                "{why}"
            );
            let e = match registry::connector_from_url(url) {
                Err(e) => e,
                Ok(c) => c
                    .put(proxy_core::Payload::from(proxy_core::Bytes::from_static(
                        b"x",
                    )))
                    .unwrap_err(),
            };
            assert!(
                messages.iter().any(|m| e.to_string().contains(m)),
                "{url}: {e}"
            );
            assert!(
                matches!(e, proxy_core::Error::Connector { .. }),
                "{url}: {e:?}"
            );
        }
    }

    #[test]
    fn every_scheme_parses_a_url() {
        register_all();
        for url in [
            "file:///dev/shm/x",
            "redis://127.0.0.1:6379/0",
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
            "ucx://127.0.0.1:7700",
            "ofi://127.0.0.1:7701",
            "margo://127.0.0.1:7702",
            "daos://pool/container",
            "endpoint://774ebd02-b442-4dea-870b-843b74b67737",
        ] {
            let scheme = url.split_once("://").unwrap().0;
            let cfg =
                registry::connector_config_from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(cfg.kind, scheme, "{url}");
        }
    }
}
