//! The proxy-core conformance suite over libfabric's `shm` provider, against
//! a `proxystore-ofi-server` process started (on a free loopback port) for
//! each case and stopped when the case ends. Zero copy is on: gets read the
//! server's mapped segments in place (`conformance_tcp` copies).

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("shm", true)
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ofi_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::OfiTests>
);
