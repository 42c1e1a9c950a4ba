//! The Margo connector in the object server's test kit: its server program,
//! the Mercury protocols it is started with; the conformance suite with
//! every case ignored where Margo is missing.
#![allow(dead_code)]

use margo_connector::{Margo, MargoConfig};
use object_server::testkit;

/// The Margo fabric of the kit: `proxystore-margo-server --margo-protocol P`.
pub struct MargoTests;

impl testkit::Fabric for MargoTests {
    type Transport = Margo;
    const SERVER_BIN: &'static str = env!("CARGO_BIN_EXE_proxystore-margo-server");
    const CYCLES: usize = 100_000;

    fn server_args(protocol: &str) -> Vec<String> {
        vec!["--margo-protocol".into(), protocol.into()]
    }

    fn config(addr: &str, protocol: &str) -> MargoConfig {
        MargoConfig::new(addr).with_protocol(protocol)
    }

    fn fabric_reads(c: &testkit::Client<Self>) -> Option<u64> {
        // A client that never needed the fabric pulled nothing.
        Some(match c.fabric_initialized() {
            true => c.transport().expect("the fabric").pulls(),
            false => 0,
        })
    }
}

/// A `proxystore-margo-server` process.
pub type ServerProcess = testkit::ServerProcess<MargoTests>;
/// A Margo connector owning its server process.
pub type WithServer = testkit::WithServer<MargoTests>;

/// The conformance suite's `setup` over Mercury protocol `protocol`: a fresh object
/// server process per case (stopped with it) and a connector to it, reading
/// the same node's segments in place (`zero_copy`) or pulling every object
/// over Mercury (each get checked against the connector's count of pulls).
pub fn conformance_setup(protocol: &str, zero_copy: bool) -> WithServer {
    testkit::conformance_setup(protocol, Some(zero_copy))
}

/// Why the tests of this crate are ignored where the build found no Margo.
pub const NEEDS_MARGO: &str = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it";

/// One `#[test]` per conformance case (the suite's own list), each ignored
/// with the reason [`NEEDS_MARGO`] when the build found no Margo.
#[allow(unused_macros)]
macro_rules! __margo_cases {
    (cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        $(
            #[test]
            #[cfg_attr(
                not(has_margo),
                ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
            )]
            fn $name() {
                proxy_core::conformance::run_test(stringify!($name), __conformance_ctx);
            }
        )*
        $(
            #[test]
            #[ignore = "opt-in conformance case: run with `cargo test <name> -- --ignored`"]
            fn $opt() {
                proxy_core::conformance::run_test(stringify!($opt), __conformance_ctx);
            }
        )*
    };
}

/// [`proxy_core::conformance_suite!`] with every case of it unchanged, each
/// ignored (reason: [`NEEDS_MARGO`]) when the build found no Margo.
#[allow(unused_macros)]
macro_rules! margo_conformance_suite {
    (setup = $setup:expr, register = $register:expr $(, leftovers = $leftovers:expr)? $(,)?) => {
        fn __conformance_ctx() -> proxy_core::conformance::Ctx {
            ($register)();
            let path = module_path!();
            let child = match path.split_once("::") {
                Some((_, rest)) => format!("{rest}::conformance_child_entry"),
                None => "conformance_child_entry".to_string(),
            };
            proxy_core::conformance::Ctx::new(
                proxy_core::IntoDynConnector::into_dyn(($setup)()),
                child,
            )
            $(.with_leftovers($leftovers))?
        }

        /// Child side of the cross-process cases (run only by them).
        #[test]
        #[ignore = "entry point of the conformance suite's child processes"]
        fn conformance_child_entry() {
            proxy_core::conformance::child_entry($register);
        }

        proxy_core::__conformance_for_each_case!(__margo_cases);
    };
}
