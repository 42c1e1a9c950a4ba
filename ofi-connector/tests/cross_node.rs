//! Across nodes of the virtual cluster (`scripts/cluster/`): the object
//! server runs on node1, these tests on node2, over libfabric's `tcp;ofi_rxm`, zero copy
//! left on. Run by `scripts/cluster/test-cross-node.sh` (which sets
//! PROXYSTORE_TEST_REMOTE_OFI to the server's address); ignored elsewhere.

mod common;

use object_server::testkit;

const VAR: &str = "PROXYSTORE_TEST_REMOTE_OFI";

#[test]
#[ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"]
fn remote_gets_are_one_sided() {
    testkit::remote_gets_are_one_sided::<common::OfiTests>(VAR, "tcp;ofi_rxm");
}

fn setup() -> testkit::Client<common::OfiTests> {
    testkit::remote_client::<common::OfiTests>(VAR, "tcp;ofi_rxm")
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ofi_connector::register,
    ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"
);
