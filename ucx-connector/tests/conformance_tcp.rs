//! The proxy-core conformance suite over UCX_TLS=tcp, against a
//! `proxystore-ucx-server` process started (on a free loopback port) for
//! each case and stopped when the case ends. Zero copy is off: every get
//! copies over UCX (`conformance_shm` reads the same node's segments in place).

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("tcp", false)
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ucx_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::UcxTests>
);

/// The `leftovers` hook above catches a `put_batch` that leaves the objects
/// before an oversized one on the server (a planted bug), which no other
/// check sees.
#[test]
fn partial_batch_is_caught() {
    object_server::testkit::partial_batch_is_caught::<common::UcxTests>(
        "tcp",
        ucx_connector::register,
    );
}
