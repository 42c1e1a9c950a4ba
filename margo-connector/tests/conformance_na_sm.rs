//! The proxy-core conformance suite over Mercury's `na+sm` (shared memory:
//! the bulk pulls are `process_vm_readv` from the server's segments),
//! against a `proxystore-margo-server` process started (on a free loopback
//! port) for each case and stopped when the case ends. Zero copy is off:
//! every get is a bulk pull, checked against the connector's count of pulls
//! (`conformance_mapped` reads the same node's segments in place).

#[macro_use]
mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("na+sm", false)
}

margo_conformance_suite!(
    setup = setup,
    register = margo_connector::register,
    leftovers = object_server::testkit::server_leftovers::<common::MargoTests>
);
