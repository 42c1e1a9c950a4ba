//! The proxy-core conformance suite against an in-process owner
//! (`MargoConnector::owner`, `na+sm`): this test process serves its own
//! objects through a Margo server instance next to its client instance; the
//! cross-process case resolves from it while it is alive.

#[macro_use]
mod common;

use std::time::Duration;

use margo_connector::{MargoConfig, MargoConnector, MargoOwnerConfig, TransportConfig};

fn setup() -> MargoConnector {
    MargoConnector::owner(MargoOwnerConfig {
        segment_size: 64 << 20,
        memory_limit: 1 << 30,
        options: MargoConfig::default()
            .with_protocol("na+sm")
            .with_timeout(Duration::from_secs(30)),
        ..Default::default()
    })
    .expect("owner connector")
}

margo_conformance_suite!(setup = setup, register = margo_connector::register);
