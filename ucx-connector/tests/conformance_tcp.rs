//! The proxy-core conformance suite over UCX_TLS=tcp, against a
//! `proxystore-ucx-server` process started (on a free loopback port) for
//! each case and stopped when the case ends. Zero copy is off: every get
//! copies over UCX (`conformance_shm` reads the same node's segments in place).

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("tcp", false)
}

proxy_core::conformance_suite!(setup = setup, register = ucx_connector::register);
