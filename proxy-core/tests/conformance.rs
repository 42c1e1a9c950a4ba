//! The conformance suite on the built-in connectors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
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

mod local {
    proxy_core::conformance_suite!(
        setup = proxy_core::LocalConnector::new,
        register = super::no_extra_kinds
    );
}

mod file {
    fn setup() -> proxy_core::FileConnector {
        proxy_core::FileConnector::new(super::scratch_dir("file")).unwrap()
    }
    proxy_core::conformance_suite!(setup = setup, register = super::no_extra_kinds);
}

mod multi {
    use proxy_core::{DynConnector, FileConnector, LocalConnector, MultiConnector, Policy};
    use std::sync::Arc;

    /// Small objects to one file store, large ones to another: every case runs
    /// through the composite, including the cross-process resolve.
    fn setup() -> MultiConnector {
        let small: DynConnector =
            Arc::new(FileConnector::new(super::scratch_dir("multi-small")).unwrap());
        let large: DynConnector =
            Arc::new(FileConnector::new(super::scratch_dir("multi-large")).unwrap());
        let _unused_local = LocalConnector::new();
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
    proxy_core::conformance_suite!(setup = setup, register = super::no_extra_kinds);
}
