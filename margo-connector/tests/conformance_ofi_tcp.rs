//! The proxy-core conformance suite over Mercury's `ofi+tcp` (libfabric's
//! `tcp;ofi_rxm` with libfabric < 1.18: RMA reads, not the stream path) on
//! loopback, against a `proxystore-margo-server` process started for each
//! case and stopped when the case ends.

#[macro_use]
mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("ofi+tcp://127.0.0.1")
}

margo_conformance_suite!(setup = setup, register = margo_connector::register);
