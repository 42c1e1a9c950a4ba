//! Across nodes of the virtual cluster (`scripts/cluster/`): the object
//! server runs on node1, these tests on node2, over libfabric's
//! `tcp;ofi_rxm`, zero copy left on (`object_server::testkit::cross_node_tests!`).
//! Run by `scripts/cluster/test-cross-node.sh`, which sets
//! PROXYSTORE_TEST_REMOTE_OFI to the server's address; ignored elsewhere.

mod common;

object_server::testkit::cross_node_tests!(
    common::OfiTests,
    "PROXYSTORE_TEST_REMOTE_OFI",
    "tcp;ofi_rxm",
    ofi_connector::register
);
