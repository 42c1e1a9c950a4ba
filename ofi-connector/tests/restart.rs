//! A client that held objects (mapped with zero copy, or read one-sided)
//! of a killed `shm` server, after a new server started on the same port:
//! its get of an old key is `None` and the new server stays alive and
//! serves, 10 times in a row.

mod common;

use common::OfiTests;
use object_server::testkit::old_client_after_restart;

#[test]
fn old_zero_copy_client_after_restart_shm() {
    old_client_after_restart::<OfiTests>("shm", true, 10);
}

#[test]
fn old_copying_client_after_restart_shm() {
    old_client_after_restart::<OfiTests>("shm", false, 10);
}

/// More client endpoints than `shm` has peer slots (256): one server, 300
/// connectors one after the other, each reading an object one-sided (so
/// the server maps it), then dropped. The server must stay alive and keep
/// serving every one of them the right bytes.
#[test]
fn more_clients_than_shm_peer_slots() {
    use common::ServerProcess;
    use object_server::testkit::pattern;
    use ofi_connector::{OfiConfig, OfiConnector, TransportConfig};
    use proxy_core::{Connector, Payload};

    let mut server = ServerProcess::start("shm", &[]);
    let cfg = OfiConfig::new(&server.addr)
        .with_provider("shm")
        .with_zero_copy(false)
        .with_timeout(std::time::Duration::from_secs(5));
    let data = pattern(100_000, 3);
    let key = OfiConnector::new(cfg.clone())
        .unwrap()
        .put(Payload::from(data.clone()))
        .unwrap();
    for i in 0..300 {
        let c = OfiConnector::new(cfg.clone()).unwrap();
        match c.get(&key) {
            Ok(got) => assert_eq!(got.as_deref(), Some(&data[..]), "client {i}"),
            Err(e) => {
                std::thread::sleep(std::time::Duration::from_millis(200));
                panic!("client {i}: {e}; server exited: {:?}", server.exited());
            }
        }
    }
    assert!(server.exited().is_none(), "the server is alive");
}
