//! Across nodes of the virtual cluster (`scripts/cluster/`): the object
//! server runs on node1, these tests on node2, over Mercury's `ofi+tcp`
//! (libfabric's `tcp;ofi_rxm`), zero copy left on
//! (`object_server::testkit::cross_node_tests!`). Run by
//! `scripts/cluster/test-cross-node.sh` where the build found Margo, which
//! sets PROXYSTORE_TEST_REMOTE_MARGO to the server's address; ignored
//! elsewhere.

mod common;

object_server::testkit::cross_node_tests!(
    common::MargoTests,
    "PROXYSTORE_TEST_REMOTE_MARGO",
    "ofi+tcp",
    margo_connector::register
);
