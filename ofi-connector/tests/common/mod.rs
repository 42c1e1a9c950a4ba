//! The libfabric connector in the object server's test kit: its server
//! program, the providers it is started with.
#![allow(dead_code)]

use object_server::testkit;
use ofi_connector::{Ofi, OfiConfig};

/// The libfabric fabric of the kit: `proxystore-ofi-server --provider P`.
pub struct OfiTests;

impl testkit::Fabric for OfiTests {
    type Transport = Ofi;
    const SERVER_BIN: &'static str = env!("CARGO_BIN_EXE_proxystore-ofi-server");

    fn server_args(provider: &str) -> Vec<String> {
        vec!["--provider".into(), provider.into()]
    }

    fn config(addr: &str, provider: &str) -> OfiConfig {
        OfiConfig::new(addr).with_provider(provider)
    }
}

/// A `proxystore-ofi-server` process.
pub type ServerProcess = testkit::ServerProcess<OfiTests>;
/// A libfabric connector owning its server process.
pub type WithServer = testkit::WithServer<OfiTests>;

/// The conformance suite's `setup` over `provider`: a fresh object server
/// process per case (stopped with it) and a connector to it, reading the
/// server's segments in place (`zero_copy`) or copying over `provider`.
pub fn conformance_setup(provider: &str, zero_copy: bool) -> WithServer {
    testkit::conformance_setup(provider, Some(zero_copy))
}

/// libfabric provider of the verbs tests: `PROXYSTORE_TEST_OFI_VERBS_PROVIDER`,
/// by default `verbs;ofi_rxm` (InfiniBand, RoCE, soft-RoCE `rxe`).
pub fn verbs_provider() -> String {
    std::env::var("PROXYSTORE_TEST_OFI_VERBS_PROVIDER")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "verbs;ofi_rxm".to_string())
}
