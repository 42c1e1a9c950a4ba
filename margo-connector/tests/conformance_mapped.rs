//! The proxy-core conformance suite on the same-node mapped path: zero copy
//! on, so gets read the segments of a `proxystore-margo-server` on this node
//! in place (no bulk pull; the server started per case over `na+sm`).
//! `conformance_na_sm` and `conformance_ofi_tcp` pull every object instead.

#[macro_use]
mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("na+sm", true)
}

margo_conformance_suite!(setup = setup, register = margo_connector::register);
