//! The proxy-core conformance suite over Mercury's `ofi+tcp` (libfabric's
//! `tcp;ofi_rxm` with libfabric < 1.18: RMA reads, not the stream path) on
//! loopback, against a `proxystore-margo-server` process started for each
//! case and stopped when the case ends. Zero copy is off: every get is a
//! bulk pull over libfabric, checked against the connector's count of pulls
//! (on this node the server's segments could otherwise be mapped).

#[macro_use]
mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("ofi+tcp://127.0.0.1", false)
}

margo_conformance_suite!(
    setup = setup,
    register = margo_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::MargoTests>
);

/// The `leftovers` hook above catches a `put_batch` that leaves the objects
/// before an oversized one on the server (a planted bug), which no other
/// check sees.
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn partial_batch_is_caught() {
    object_server::testkit::partial_batch_is_caught::<common::MargoTests>(
        "ofi+tcp://127.0.0.1",
        margo_connector::register,
    );
}
