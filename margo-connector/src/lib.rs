//! Margo connector for proxystore-rs: the Mochi Margo (Mercury) transport of
//! the shared object server (`object-server`), its configuration, and the
//! `margo` safe layer over `margo-sys`.
//!
//! A get is a client-initiated bulk pull (`margo_bulk_ctransfer_timed` with
//! `HG_BULK_PULL`, the server's segment handle as origin) into this
//! process's pooled receive buffers, each covered by a bulk handle created
//! once, handed out as `Bytes`. Margo is loaded at run time: without it the
//! crate still builds, and every entry point fails with an error that says
//! how to install it. See the crate README for protocols and numbers.
#![warn(missing_docs)]

mod config;
pub mod margo;
mod transport;

pub use config::{DEFAULT_PROTOCOL, MargoConfig, PROTOCOL_ENV};
pub use object_server::{DataPath, TransportConfig};
pub use transport::{Margo, MargoAlloc, MargoRegion, MargoRemote, MargoServer};

/// Connector kind.
pub const KIND: &str = "margo";

/// The Margo connector: an [`object_server::ObjectClient`] over [`Margo`].
pub type MargoConnector = object_server::ObjectClient<Margo>;
/// The key of an object (the object server's key: it names the object, not
/// the transport).
pub type MargoKey = object_server::ObjectKey;
/// Options of an in-process owner ([`MargoConnector::owner`]).
pub type MargoOwnerConfig = object_server::OwnerOptions<MargoConfig>;

/// Environment variable naming the server binary that spawn on demand starts.
pub const SERVER_ENV: &str = <MargoConfig as TransportConfig>::SERVER.env;

/// The `proxystore-margo-server` binary that spawn on demand would start:
/// `$PROXYSTORE_MARGO_SERVER`, else next to the current executable, else on
/// `PATH`. The error lists every place tried.
pub fn locate_server() -> Result<std::path::PathBuf, String> {
    object_server::locate_server(&<MargoConfig as TransportConfig>::SERVER)
}

/// Whether Margo can be used in this process: `Ok` with the library loaded,
/// or the error saying how to install it.
pub fn available() -> proxy_core::Result<()> {
    margo::api().map(|_| ())
}

/// Whether a push through a reader's `HG_BULK_READ_ONLY` handle is refused
/// at the target, for a server at Mercury address `address`.
///
/// - `na+sm`: no. Mercury refuses the push in the *writer's* process (its
///   check of the handle's flags); the bytes move with `process_vm_writev`,
///   which the kernel allows into any writable page of a process of the same
///   user, so a process that forges the flags is not stopped.
/// - `ofi+tcp` / `ofi+shm` (libfabric 1.17 here), `ofi+verbs`, `ofi+cxi`,
///   `ofi+efa`: yes, the handle is an MR registered with `FI_REMOTE_READ`
///   only, checked by the provider or the NIC (as measured for the
///   libfabric connector).
/// - `ucx+*`: no (UCX registers memory with full remote access).
pub fn enforces_read_only(address: &str) -> bool {
    let Some(rest) = address.strip_prefix("ofi+") else {
        return false;
    };
    let prov = rest.split([';', ':']).next().unwrap_or(rest);
    matches!(prov, "tcp" | "shm" | "verbs" | "cxi" | "efa")
}

/// Register the `"margo"` kind with `proxy_core`'s connector registry, so
/// that proxies and configurations naming it can be resolved in this
/// process, and the `margo://HOST:PORT` store URL scheme.
pub fn register() {
    proxy_core::registry::register_connector::<MargoConnector>();
    proxy_core::registry::register_scheme("margo", object_server::config_from_url::<Margo>);
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_only_enforcement_by_protocol() {
        assert!(!super::enforces_read_only("na+sm://1234-0"));
        assert!(super::enforces_read_only(
            "ofi+tcp;ofi_rxm://127.0.0.1:4000"
        ));
        assert!(super::enforces_read_only("ofi+cxi://0x1"));
        assert!(!super::enforces_read_only("ofi+sockets://127.0.0.1:1"));
        assert!(!super::enforces_read_only("ucx+all://x"));
    }

    #[test]
    fn urls() {
        use proxy_core::registry;
        crate::register();
        let c = registry::connector_config_from_url("margo://10.0.0.1:7700/").unwrap();
        assert_eq!(
            (c.kind.as_str(), &c.options["server"]),
            ("margo", &"10.0.0.1:7700".into())
        );
        let o: crate::MargoConfig = c.options().unwrap();
        assert_eq!(o, crate::MargoConfig::new("10.0.0.1:7700"));
        let c = registry::connector_config_from_url(
            "margo://10.0.0.1:7700?protocol=ofi+tcp://127.0.0.1&max_in_flight=4",
        )
        .unwrap();
        let o: crate::MargoConfig = c.options().unwrap();
        assert_eq!(o.protocol.as_deref(), Some("ofi+tcp://127.0.0.1"));
        assert_eq!(o.client.max_in_flight, 4);
        let e = registry::connector_config_from_url("margo://h:1?proto=na+sm")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown query key \"proto\"") && e.contains("zero_copy, protocol"),
            "{e}"
        );
        for bad in [
            "margo://",
            "margo://host",
            "margo://:7700",
            "margo://host:port",
            "margo://host:7700/x",
            "margo://u:pw@host:7700",
        ] {
            let e = registry::connector_config_from_url(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("margo") && !e.contains("pw@"), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod without_margo {
    use object_server::ClientTransport;

    /// Where the build found no Margo (CI): the connector, the server side
    /// and `available` fail with the error that says how to install it.
    #[test]
    #[cfg_attr(
        has_margo,
        ignore = "Margo is installed here: the missing-Margo errors are checked where it is not"
    )]
    fn every_entry_point_says_how_to_install_margo() {
        let cfg = crate::MargoConfig::new("127.0.0.1:1");
        let errors = [
            crate::available().unwrap_err(),
            // The connector makes its fabric on first need: its first get,
            // put or transport() says it.
            match crate::MargoConnector::new(cfg.clone())
                .expect("a connector is made before its fabric")
                .transport()
            {
                Err(e) => e,
                Ok(_) => panic!("a Margo fabric without Margo"),
            },
            crate::MargoServer::new("na+sm").unwrap_err(),
            match crate::Margo::serve(&cfg) {
                Err(e) => e,
                Ok(_) => panic!("a Margo server without Margo"),
            },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(
                s.contains("spack install mochi-margo") && s.contains("MARGO_DIR"),
                "{s}"
            );
            assert!(!e.is_temporary(), "{s}");
        }
    }
}
