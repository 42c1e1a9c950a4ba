//! The conformance suite on the built-in connectors. Every namespace is a
//! fresh directory that `close` deletes (`clear`), checked by `leftovers`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proxy_core::ConnectorConfig;

fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!(
        "proxystore-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn no_extra_kinds() {}

/// What is left of the directories of a file connector's configuration, or of
/// the file children of a multi connector's.
fn dirs_left(cfg: &ConnectorConfig) -> Vec<String> {
    let mut left = Vec::new();
    match cfg.kind.as_str() {
        "file" => {
            let dir = PathBuf::from(cfg.options["dir"].as_str().expect("file option dir"));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                left.push(format!("directory {}", dir.display()));
                left.extend(entries.map(|e| e.unwrap().path().display().to_string()));
            }
        }
        "multi" => {
            for child in cfg.options["connectors"].as_array().expect("children") {
                let child: ConnectorConfig =
                    serde_json::from_value(child["connector"].clone()).unwrap();
                left.extend(dirs_left(&child));
            }
        }
        other => panic!("no directories in a {other} configuration"),
    }
    left
}

mod local {
    proxy_core::conformance_suite!(
        setup = proxy_core::LocalConnector::new,
        register = super::no_extra_kinds
    );
}

mod file {
    fn setup() -> proxy_core::FileConnector {
        proxy_core::FileConnector::with_clear(super::scratch_dir("file"), true).unwrap()
    }
    proxy_core::conformance_suite!(
        setup = setup,
        register = super::no_extra_kinds,
        leftovers = super::dirs_left
    );
}

mod multi {
    use proxy_core::{DynConnector, FileConnector, MultiConnector, Policy};
    use std::sync::Arc;

    /// Small objects to one file store, large ones to another: every case runs
    /// through the composite, including the cross-process ones.
    fn setup() -> MultiConnector {
        let small: DynConnector =
            Arc::new(FileConnector::with_clear(super::scratch_dir("multi-small"), true).unwrap());
        let large: DynConnector =
            Arc::new(FileConnector::with_clear(super::scratch_dir("multi-large"), true).unwrap());
        MultiConnector::new(vec![
            (
                "small".into(),
                Policy {
                    max_size: Some(4096),
                    ..Policy::default()
                },
                small,
            ),
            (
                "large".into(),
                Policy {
                    min_size: 4097,
                    ..Policy::default()
                },
                large,
            ),
        ])
        .unwrap()
    }
    proxy_core::conformance_suite!(
        setup = setup,
        register = super::no_extra_kinds,
        leftovers = super::dirs_left
    );
}
