//! A client that held objects (mapped with zero copy, or read one-sided)
//! of a killed server over UCX shared memory, after a new server started on
//! the same port: its get of an old key is `None` and the new server stays
//! alive and serves, 10 times in a row (the sequence that crashed
//! libfabric's `shm`: `ofi-connector/tests/restart.rs`).

mod common;

use common::UcxTests;
use object_server::testkit::old_client_after_restart;

#[test]
fn old_zero_copy_client_after_restart_shm() {
    old_client_after_restart::<UcxTests>("shm,cma,self", true, 10);
}

#[test]
fn old_copying_client_after_restart_shm() {
    old_client_after_restart::<UcxTests>("shm,cma,self", false, 10);
}
