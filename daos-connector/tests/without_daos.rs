//! Every entry point fails with a clear error when libdaos cannot be loaded
//! (CI, a laptop): it names DAOS and how to install it. On a machine with
//! DAOS, a pool that does not exist is the clear error instead.

use daos_connector::{DaosConnector, DaosOptions};
use proxy_core::{Error, registry};

#[test]
fn constructors_fail_clearly_without_daos() {
    daos_connector::register();
    let via_url = registry::connector_from_url("daos://psrs-nonexistent-pool/c1").unwrap_err();
    let direct = DaosConnector::new(DaosOptions::new("psrs-nonexistent-pool", "c1")).unwrap_err();
    for e in [via_url, direct] {
        let m = e.to_string();
        match daos_connector::available() {
            Err(why) => {
                assert!(matches!(e, Error::Connector { .. }), "{m}");
                assert!(!e.is_temporary(), "{m}");
                assert!(m.contains("DAOS is not available"), "{m}");
                assert!(
                    m.contains("DAOS_DIR") && m.contains("spack install daos"),
                    "{m}"
                );
                assert!(why.contains("libdaos.so.2"), "{why}");
            }
            Ok(()) => {
                assert!(matches!(e, Error::InvalidConfig { .. }), "{m}");
                assert!(m.contains("psrs-nonexistent-pool"), "{m}");
            }
        }
    }
}
