//! Connectors the benchmarks can run, by name.

use std::path::PathBuf;
use std::sync::Arc;

use proxy_core::{DynConnector, FileConnector, LocalConnector, Result};

/// Names accepted by `--connectors`.
pub const KNOWN: &[&str] = &["local", "file", "redis", "ucx"];

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
    /// `host:port` of a running Redis server (for the redis connector).
    #[arg(long, env = "PROXYSTORE_BENCH_REDIS", default_value = "127.0.0.1:6379")]
    pub redis: String,
}

/// Make every connector kind this binary links rebuildable from a config (the
/// consumer side of a proxy).
pub fn register_all() {
    redis_connector::register();
    ucx_connector::register();
}

/// The default directory of the file connector: on `/dev/shm` when it exists.
pub fn default_file_dir(tag: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    PathBuf::from(base).join(format!("proxystore-bench-{tag}-{}", std::process::id()))
}

pub fn make(name: &str, opts: &ConnectorOpts) -> Result<DynConnector> {
    match name {
        "local" => Ok(Arc::new(LocalConnector::new())),
        "file" => {
            let dir = opts
                .file_dir
                .clone()
                .unwrap_or_else(|| default_file_dir("file"));
            Ok(Arc::new(FileConnector::new(dir)?))
        }
        "redis" => {
            let addr = &opts.redis;
            let (host, port) = addr
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| proxy_core::Error::InvalidConfig {
                    connector: Some("redis".into()),
                    reason: format!("--redis wants HOST:PORT, got {addr:?}"),
                })?;
            Ok(Arc::new(redis_connector::RedisConnector::new(host, port)?))
        }
        "ucx" => {
            let server = opts.ucx_server.clone().ok_or_else(|| proxy_core::Error::InvalidConfig {
                connector: Some("ucx".into()),
                reason: "no object server given: start proxystore-ucx-server and pass --ucx-server HOST:PORT".into(),
            })?;
            Ok(Arc::new(ucx_connector::UcxConnector::new(
                ucx_connector::UcxConfig::new(node_local(&server)),
            )?))
        }
        other => Err(proxy_core::Error::InvalidConfig {
            connector: Some(other.to_string()),
            reason: format!(
                "unknown benchmark connector (known here: {})",
                KNOWN.join(", ")
            ),
        }),
    }
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
