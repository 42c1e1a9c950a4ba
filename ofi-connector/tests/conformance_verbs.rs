//! The proxy-core conformance suite over libfabric's `verbs;ofi_rxm`
//! provider (or `PROXYSTORE_TEST_OFI_VERBS_PROVIDER`), against a
//! `proxystore-ofi-server` process started for each case.
//!
//! Ignored unless run with `-- --ignored`: it needs an RDMA device
//! (InfiniBand, RoCE, or soft-RoCE: `rdma link add rxe0 type rxe netdev IF`).
//! `docker/entrypoint.sh` runs it when the host has one.

mod common;

fn setup() -> common::WithServer {
    // Zero copy off: same-node mapped gets would bypass the fabric.
    common::conformance_setup(&common::verbs_provider(), false)
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ofi_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::OfiTests>,
    ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"
);
