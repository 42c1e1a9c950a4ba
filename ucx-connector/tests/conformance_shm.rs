//! The proxy-core conformance suite over UCX_TLS=shm,cma,self, against a
//! `proxystore-ucx-server` process started (on a free loopback port) for
//! each case and stopped when the case ends. Zero copy is on: gets read the
//! server's mapped segments in place (`conformance_tcp` copies).

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("shm,cma,self", true)
}

proxy_core::conformance_suite!(
    setup = setup,
    register = ucx_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::UcxTests>
);
