//! The proxy-core conformance suite over UCX's verbs transports
//! (`rc_verbs,ud_verbs,self`, or `PROXYSTORE_TEST_UCX_VERBS_TLS`), against a
//! `proxystore-ucx-server` process started for each case.
//!
//! Ignored unless run with `-- --ignored`: it needs an RDMA device
//! (InfiniBand, RoCE, or soft-RoCE: `rdma link add rxe0 type rxe netdev IF`).
//! `docker/entrypoint.sh` runs it when the host has one.

mod common;

fn setup() -> common::WithServer {
    // Zero copy off: same-node mapped gets would bypass the fabric.
    common::conformance_setup(&common::verbs_tls(), false)
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ucx_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::UcxTests>,
    ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"
);
