//! The proxy-core conformance suite over libfabric's `shm` provider, against
//! a `proxystore-ofi-server` process started (on a free loopback port) for
//! each case and stopped when the case ends.

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("shm")
}

proxy_core::conformance_suite!(setup = setup, register = ofi_connector::register);
