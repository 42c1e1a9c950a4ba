//! Across nodes of the virtual cluster (`scripts/cluster/`): the object
//! server runs on node1, these tests on node2, over UCX_TLS=tcp, zero copy
//! left on. Run by `scripts/cluster/test-cross-node.sh` (which sets
//! PROXYSTORE_TEST_REMOTE_UCX to the server's address); ignored elsewhere.

mod common;

use object_server::testkit;

const VAR: &str = "PROXYSTORE_TEST_REMOTE_UCX";

#[test]
#[ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"]
fn remote_gets_are_one_sided() {
    testkit::remote_gets_are_one_sided::<common::UcxTests>(VAR, "tcp");
}

fn setup() -> testkit::Client<common::UcxTests> {
    testkit::remote_client::<common::UcxTests>(VAR, "tcp")
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ucx_connector::register,
    ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"
);
