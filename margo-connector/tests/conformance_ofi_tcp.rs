//! The proxy-core conformance suite over Mercury's `ofi+tcp` (libfabric's
//! `tcp;ofi_rxm` with libfabric < 1.18: RMA reads, not the stream path) on
//! loopback, against a `proxystore-margo-server` process started for each
//! case and stopped when the case ends. Zero copy is off: every get is a
//! bulk pull over libfabric, checked against the connector's count of pulls
//! (on this node the server's segments could otherwise be mapped).

#[macro_use]
mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("ofi+tcp://127.0.0.1", false)
}

margo_conformance_suite!(setup = setup, register = margo_connector::register);
