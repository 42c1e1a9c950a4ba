//! Across nodes of the virtual cluster (`scripts/cluster/`): the object
//! server runs on node1, these tests on node2, over UCX_TLS=tcp, zero copy
//! left on (`object_server::testkit::cross_node_tests!`). Run by
//! `scripts/cluster/test-cross-node.sh`, which sets
//! PROXYSTORE_TEST_REMOTE_UCX to the server's address; ignored elsewhere.

mod common;

object_server::testkit::cross_node_tests!(
    common::UcxTests,
    "PROXYSTORE_TEST_REMOTE_UCX",
    "tcp",
    ucx_connector::register
);
