//! The UCX connector in the object server's test kit: its server program,
//! the UCX transports it is started with.
#![allow(dead_code)]

use object_server::testkit;
use ucx_connector::{Ucx, UcxConfig};

/// The UCX fabric of the kit: `proxystore-ucx-server --tls TLS`.
pub struct UcxTests;

impl testkit::Fabric for UcxTests {
    type Transport = Ucx;
    const SERVER_BIN: &'static str = env!("CARGO_BIN_EXE_proxystore-ucx-server");
    // Batches of 64 MiB take long enough that the kill lands in one.
    const KILLED_SERVER_OBJECTS: (usize, usize) = (16, 4 << 20);

    fn server_args(tls: &str) -> Vec<String> {
        vec!["--tls".into(), tls.into()]
    }

    fn config(addr: &str, tls: &str) -> UcxConfig {
        UcxConfig::new(addr).with_ucx_tls(tls)
    }
}

/// A `proxystore-ucx-server` process.
pub type ServerProcess = testkit::ServerProcess<UcxTests>;
/// A UCX connector owning its server process.
pub type WithServer = testkit::WithServer<UcxTests>;

/// The conformance suite's `setup` over transports `tls`: a fresh object
/// server process per case (stopped with it) and a connector to it, reading
/// the server's segments in place (`zero_copy`) or copying over `tls`.
pub fn conformance_setup(tls: &str, zero_copy: bool) -> WithServer {
    testkit::conformance_setup(tls, Some(zero_copy))
}

/// UCX transports of the verbs tests: `PROXYSTORE_TEST_UCX_VERBS_TLS`, by
/// default `rc_verbs,ud_verbs,self` (InfiniBand, RoCE, soft-RoCE `rxe`).
pub fn verbs_tls() -> String {
    std::env::var("PROXYSTORE_TEST_UCX_VERBS_TLS")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "rc_verbs,ud_verbs,self".to_string())
}
