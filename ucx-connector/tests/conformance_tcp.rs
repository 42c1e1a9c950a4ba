//! The proxy-core conformance suite over UCX_TLS=tcp, against a
//! `proxystore-ucx-server` process started (on a free loopback port) for
//! each case and stopped when the case ends.

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("tcp")
}

proxy_core::conformance_suite!(setup = setup, register = ucx_connector::register);
