//! The conformance suite, unchanged, on the example connector: one fresh
//! directory per case, deleted by `close` (checked by `leftovers`).

use std::path::{Path, PathBuf};

use dir_connector::DirConnector;
use proxy_core::ConnectorConfig;

/// A fresh directory per case (in memory where there is `/dev/shm`: the
/// suite writes a 256 MiB object).
fn setup() -> DirConnector {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("dir-connector-test-{}", uuid::Uuid::new_v4()));
    DirConnector::new(dir, true).unwrap()
}

/// What is left of the case's directory (nothing once `close` deleted it).
fn left(cfg: &ConnectorConfig) -> Vec<String> {
    let dir = PathBuf::from(cfg.options["dir"].as_str().unwrap());
    match std::fs::read_dir(&dir) {
        Ok(entries) => std::iter::once(format!("directory {}", dir.display()))
            .chain(entries.map(|e| e.unwrap().path().display().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

proxy_core::conformance_suite!(
    setup = setup,
    register = dir_connector::register,
    leftovers = left
);
