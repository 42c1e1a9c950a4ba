//! A client that held objects (mapped with zero copy, or read one-sided)
//! of a killed `shm` server, after a new server started on the same port:
//! its get of an old key is `None` and the new server stays alive and
//! serves, 10 times in a row.

mod common;

use common::OfiTests;
use object_server::testkit::{Mode, old_client_after_restart};
use ofi_connector::DataPath;

#[test]
fn old_zero_copy_client_after_restart_shm() {
    let mode = Mode {
        path: DataPath::Auto,
        zero_copy: Some(true),
    };
    old_client_after_restart::<OfiTests>("shm", mode, 10);
}

#[test]
fn old_copying_client_after_restart_shm() {
    let mode = Mode {
        path: DataPath::Auto,
        zero_copy: Some(false),
    };
    old_client_after_restart::<OfiTests>("shm", mode, 10);
}
