//! The proxy-core conformance suite over UCX_TLS=tcp, against a
//! `proxystore-ucx-server` process started (on a free loopback port) for
//! each case and stopped when the case ends.

mod common;

use std::time::Duration;

use common::{ServerProcess, WithServer};
use ucx_connector::{UcxConfig, UcxConnector};

const TLS: &str = "tcp";

fn setup() -> WithServer {
    let server = ServerProcess::start(TLS, &["--segment-size", "64M", "--memory-limit", "1G"]);
    let cfg = UcxConfig::new(&server.addr)
        .with_ucx_tls(TLS)
        .with_timeout(Duration::from_secs(30));
    WithServer {
        conn: UcxConnector::new(cfg).expect("connector"),
        server,
    }
}

proxy_core::conformance_suite!(setup = setup, register = ucx_connector::register);
