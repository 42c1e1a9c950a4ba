//! Read-only access, against a real server process: a reader's key
//! (`FI_REMOTE_READ` only) and a writer's key (granted for a reservation)
//! are different registrations; a one-sided write through the reader's key
//! fails wherever the provider checks MR access, and this test finds out
//! for `shm` and `tcp;ofi_rxm` that it does (`enforces_read_only`).

mod common;

use common::OfiTests;
use object_server::testkit::access::write_through_reader_descriptor;

fn read_key_refuses_writes(provider: &str) {
    let w = write_through_reader_descriptor::<OfiTests>(provider, <[u8]>::to_vec);
    assert_eq!(
        w.refused,
        ofi_connector::enforces_read_only(provider),
        "{provider}: enforces_read_only() disagrees with what the provider does ({})",
        w.outcome
    );
}

#[test]
fn read_key_refuses_writes_shm() {
    read_key_refuses_writes("shm");
}

#[test]
fn read_key_refuses_writes_tcp() {
    read_key_refuses_writes("tcp;ofi_rxm");
}
