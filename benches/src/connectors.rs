//! Connectors the benchmarks can run, by name.

use std::path::PathBuf;
use std::sync::Arc;

use proxy_core::{DynConnector, LocalConnector, Result};

/// Names accepted by `--connectors`.
pub const KNOWN: &[&str] = &[
    "local",
    "file",
    "redis",
    "redis-cluster",
    "ucx",
    "ofi",
    "margo",
    "daos",
    "ucx-copy",
    "ofi-copy",
];

/// Options shared by the connectors.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectorOpts {
    /// Directory of the file connector (default: a fresh one under /dev/shm).
    #[arg(long)]
    pub file_dir: Option<PathBuf>,
    /// `host:port` of a running proxystore-ucx-server (for the ucx connector);
    /// `:PORT` = the server on each rank's own node.
    #[arg(long, env = "PROXYSTORE_UCX_SERVER_ADDR")]
    pub ucx_server: Option<String>,
    /// `host:port` of a running proxystore-ofi-server or `proxystore-server
    /// --transports ucx,ofi` (for the ofi connector; the provider comes from
    /// `FI_PROVIDER`); `:PORT` = the server on each rank's own node.
    #[arg(long, env = "PROXYSTORE_OFI_SERVER_ADDR")]
    pub ofi_server: Option<String>,
    /// `POOL/CONTAINER` labels of a DAOS pool and container (for the daos
    /// connector; each run uses a fresh namespace in the container).
    #[arg(long, env = "PROXYSTORE_DAOS_STORE")]
    pub daos: Option<String>,
    /// `host:port` of a running proxystore-margo-server or `proxystore-server
    /// --transports ...,margo` (for the margo connector; the Mercury protocol
    /// comes from `PROXYSTORE_MARGO_PROTOCOL`, default `na+sm`); `:PORT` = the
    /// server on each rank's own node.
    #[arg(long, env = "PROXYSTORE_MARGO_SERVER_ADDR")]
    pub margo_server: Option<String>,
    /// `host:port` of a running Redis server (for the redis connector).
    #[arg(long, env = "PROXYSTORE_BENCH_REDIS", default_value = "127.0.0.1:6379")]
    pub redis: String,
    /// `host:port[,host:port...]` of nodes of a running Redis Cluster (for
    /// the redis-cluster connector; one reachable node is enough).
    #[arg(long, env = "PROXYSTORE_BENCH_REDIS_CLUSTER")]
    pub redis_cluster: Option<String>,
}

/// Make every connector kind this binary links rebuildable from a config (the
/// consumer side of a proxy), and their store URL schemes known (the one list
/// of `proxystore-connectors`).
pub use proxystore_connectors::register_all;

/// The default directory of the file connector: on `/dev/shm` when it exists.
pub fn default_file_dir(tag: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    PathBuf::from(base).join(format!("proxystore-bench-{tag}-{}", std::process::id()))
}

/// The connector `name` stands for: `local`, or a connector built from a
/// store URL by the scheme parsers its crate registered (the same parsing as
/// the command-line tool's `--store`): `file`, `redis`, `redis-cluster`, `ucx`,
/// `ofi` and `margo` take their URL from the options (`file://DIR`,
/// `redis://HOST:PORT`, `redis+cluster://HOST:PORT,...`,
/// `ucx://HOST:PORT`, `ofi://HOST:PORT`, `margo://HOST:PORT`; `ucx-copy` and
/// `ofi-copy` are those of `ucx` and `ofi` with zero copy off, so that
/// same-node gets copy over the transport),
/// and a name that is a URL itself (`redis://10.0.0.5:6380/1`) is used as is.
pub fn make(name: &str, opts: &ConnectorOpts) -> Result<DynConnector> {
    if name == "local" {
        return Ok(Arc::new(LocalConnector::new()));
    }
    proxy_core::registry::connector_from_url(&url_of(name, opts)?)
}

/// The store URL of a benchmark connector name (see [`make`]).
fn url_of(name: &str, opts: &ConnectorOpts) -> Result<String> {
    Ok(match name {
        url if url.contains("://") => url.to_string(),
        "file" => {
            let dir = opts
                .file_dir
                .clone()
                .unwrap_or_else(|| default_file_dir("file"));
            let dir = std::path::absolute(&dir)
                .map_err(|e| proxy_core::Error::io(format!("resolving {}", dir.display()), e))?;
            format!("file://{}", dir.display())
        }
        "redis" => format!("redis://{}", opts.redis),
        "redis-cluster" => {
            let nodes =
                opts.redis_cluster
                    .clone()
                    .ok_or_else(|| proxy_core::Error::InvalidConfig {
                        connector: Some("redis+cluster".into()),
                        reason:
                            "no Redis Cluster given: pass --redis-cluster HOST:PORT[,HOST:PORT...]"
                                .into(),
                    })?;
            format!("redis+cluster://{nodes}")
        }
        // Zero copy off: same-node gets copy over the transport (the
        // object server's `?zero_copy=false`), to compare with the mapped path.
        "ucx-copy" | "ofi-copy" => format!(
            "{}?zero_copy=false",
            url_of(name.trim_end_matches("-copy"), opts)?
        ),
        "ucx" => {
            let server = opts.ucx_server.clone().ok_or_else(|| proxy_core::Error::InvalidConfig {
                connector: Some("ucx".into()),
                reason: "no object server given: start proxystore-ucx-server and pass --ucx-server HOST:PORT".into(),
            })?;
            format!("ucx://{}", node_local(&server))
        }
        "ofi" => {
            let server = opts.ofi_server.clone().ok_or_else(|| proxy_core::Error::InvalidConfig {
                connector: Some("ofi".into()),
                reason: "no object server given: start proxystore-ofi-server (or proxystore-server --transports ucx,ofi) and pass --ofi-server HOST:PORT".into(),
            })?;
            format!("ofi://{}", node_local(&server))
        }
        "daos" => {
            let store = opts.daos.clone().ok_or_else(|| proxy_core::Error::InvalidConfig {
                connector: Some("daos".into()),
                reason: "no DAOS pool and container given: pass --daos POOL/CONTAINER (or set PROXYSTORE_DAOS_STORE)".into(),
            })?;
            format!(
                "daos://{}/proxystore-bench-{}",
                store.trim_end_matches('/'),
                std::process::id()
            )
        }
        "margo" => {
            let server = opts.margo_server.clone().ok_or_else(|| proxy_core::Error::InvalidConfig {
                connector: Some("margo".into()),
                reason: "no object server given: start proxystore-margo-server (or proxystore-server --transports ucx,margo) and pass --margo-server HOST:PORT".into(),
            })?;
            format!("margo://{}", node_local(&server))
        }
        other => {
            return Err(proxy_core::Error::InvalidConfig {
                connector: Some(other.to_string()),
                reason: format!(
                    "unknown benchmark connector (known here: {}, or a store URL of scheme {})",
                    KNOWN.join(", "),
                    proxy_core::registry::registered_schemes().join(", ")
                ),
            });
        }
    })
}

/// `:PORT` means "the server on this node" (one object server per node, as
/// the Slurm script starts them): this host's name with that port.
fn node_local(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "127.0.0.1".into());
            format!("{host}:{port}")
        }
        None => addr.to_string(),
    }
}

/// Remove what a connector left behind (the file connector's directory).
pub fn cleanup(conn: &DynConnector) {
    if conn.kind() == "file"
        && let Ok(o) = conn.config().options::<serde_json_value::Dir>()
        && (o.dir.starts_with("/dev/shm/proxystore-bench-")
            || o.dir.starts_with("/tmp/proxystore-bench-"))
    {
        std::fs::remove_dir_all(&o.dir).ok();
    }
}

mod serde_json_value {
    #[derive(serde::Deserialize)]
    pub struct Dir {
        pub dir: std::path::PathBuf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ConnectorOpts {
        ConnectorOpts {
            file_dir: Some("/dev/shm/x".into()),
            ucx_server: Some("10.0.0.1:7700".into()),
            ofi_server: Some("10.0.0.3:7701".into()),
            daos: Some("pool1/cont1".into()),
            margo_server: Some("10.0.0.4:7702".into()),
            redis: "10.0.0.2:6380".into(),
            redis_cluster: Some("10.0.0.5:7000,10.0.0.6:7001".into()),
        }
    }

    #[test]
    fn names_are_store_urls() {
        register_all();
        let o = opts();
        assert_eq!(url_of("file", &o).unwrap(), "file:///dev/shm/x");
        assert_eq!(url_of("redis", &o).unwrap(), "redis://10.0.0.2:6380");
        assert_eq!(url_of("ucx", &o).unwrap(), "ucx://10.0.0.1:7700");
        let cfg =
            proxy_core::registry::connector_config_from_url(&url_of("redis-cluster", &o).unwrap())
                .unwrap();
        assert_eq!(
            (cfg.kind.as_str(), cfg.options["nodes"].to_string()),
            (
                "redis+cluster",
                r#"["10.0.0.5:7000","10.0.0.6:7001"]"#.into()
            )
        );
        let e = make(
            "redis-cluster",
            &ConnectorOpts {
                redis_cluster: None,
                ..opts()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--redis-cluster"), "{e}");
        assert_eq!(url_of("ofi", &o).unwrap(), "ofi://10.0.0.3:7701");
        assert_eq!(url_of("margo", &o).unwrap(), "margo://10.0.0.4:7702");
        let cfg =
            proxy_core::registry::connector_config_from_url(&url_of("daos", &o).unwrap()).unwrap();
        assert_eq!(
            (
                cfg.kind.as_str(),
                &cfg.options["pool"],
                &cfg.options["container"]
            ),
            ("daos", &"pool1".into(), &"cont1".into())
        );
        let cfg =
            proxy_core::registry::connector_config_from_url(&url_of("ofi", &o).unwrap()).unwrap();
        assert_eq!(
            (cfg.kind.as_str(), &cfg.options["server"]),
            ("ofi", &"10.0.0.3:7701".into())
        );
        let cfg =
            proxy_core::registry::connector_config_from_url(&url_of("redis", &o).unwrap()).unwrap();
        assert_eq!(
            (&cfg.options["host"], &cfg.options["port"]),
            (&"10.0.0.2".into(), &6380.into())
        );
        let e = make("warp", &o).unwrap_err().to_string();
        assert!(
            e.contains("file, redis, redis-cluster, ucx, ofi, margo, daos"),
            "{e}"
        );
        let bad = ConnectorOpts {
            redis: "10.0.0.2:notaport".into(),
            ..opts()
        };
        let e = make("redis", &bad).unwrap_err().to_string();
        assert!(e.contains("bad Redis port"), "{e}");
    }
}
