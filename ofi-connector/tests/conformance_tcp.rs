//! The proxy-core conformance suite over libfabric's `tcp;ofi_rxm` provider
//! (one-sided reads, not the stream path), against a `proxystore-ofi-server`
//! process started (on a free loopback port) for each case and stopped when
//! the case ends. Zero copy is off: every get copies over libfabric
//! (`conformance_shm` reads the same node's segments in place).

mod common;

fn setup() -> common::WithServer {
    common::conformance_setup("tcp;ofi_rxm", false)
}

proxy_core::conformance_suite!(setup = setup, register = ofi_connector::register);
