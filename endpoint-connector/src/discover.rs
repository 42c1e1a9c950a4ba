//! Finding the local endpoint as ProxyStore does: endpoint configurations
//! (`<dir>/<name>/config.toml`) under the ProxyStore home directory
//! (`$PROXYSTORE_HOME`, else `$XDG_DATA_HOME/proxystore`, else
//! `~/.local/share/proxystore`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What this connector reads of an endpoint's `config.toml`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EndpointConfig {
    pub(crate) name: String,
    pub(crate) uuid: String,
    #[serde(default)]
    pub(crate) host: Option<String>,
    pub(crate) port: u16,
    #[serde(default)]
    pub(crate) storage: Storage,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Storage {
    #[serde(default)]
    pub(crate) max_object_size: Option<u64>,
}

/// ProxyStore's `home_dir()`.
pub(crate) fn home_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PROXYSTORE_HOME") {
        return PathBuf::from(p);
    }
    let prefix = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    prefix.join("proxystore")
}

/// Every readable endpoint configuration under `dir` (any depth, as
/// ProxyStore's `get_configs` walks it); unreadable ones are skipped.
pub(crate) fn configs(dir: &Path) -> Vec<EndpointConfig> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if let Some(cfg) = std::fs::read_to_string(p.join("config.toml"))
                .ok()
                .and_then(|t| toml::from_str::<EndpointConfig>(&t).ok())
            {
                out.push(cfg);
            }
            stack.push(p);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_configs() {
        let dir = std::env::temp_dir().join(format!("ep-discover-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("ep1")).unwrap();
        std::fs::create_dir_all(dir.join("broken")).unwrap();
        std::fs::write(
            dir.join("ep1/config.toml"),
            "name = \"ep1\"\nuuid = \"774ebd02-b442-4dea-870b-843b74b67737\"\nport = 9753\nhost = \"127.0.0.1\"\n[relay]\npeer_channels = 1\n[storage]\nmax_object_size = 100000000\n",
        )
        .unwrap();
        std::fs::write(dir.join("broken/config.toml"), "name = 3").unwrap();
        let found = configs(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].port, found[0].host.as_deref()),
            (9753, Some("127.0.0.1"))
        );
        assert_eq!(found[0].storage.max_object_size, Some(100_000_000));
    }
}
