//! The proxy-core conformance suite against an in-process owner
//! (`UcxConnector::owner`, UCX_TLS=shm,cma,self): this test process serves its
//! own objects; the cross-process case resolves from it while it is alive.

use std::time::Duration;
use ucx_connector::TransportConfig;

use ucx_connector::{UcxConfig, UcxConnector, UcxOwnerConfig};

const TLS: &str = "shm,cma,self";

fn setup() -> UcxConnector {
    UcxConnector::owner(UcxOwnerConfig {
        segment_size: 64 << 20,
        memory_limit: 1 << 30,
        options: UcxConfig::default()
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(30)),
        ..Default::default()
    })
    .expect("owner connector")
}

proxy_core::conformance_suite!(setup = setup, register = ucx_connector::register);
