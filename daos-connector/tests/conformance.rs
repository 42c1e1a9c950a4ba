//! The proxy-core conformance suite, unchanged, against a real DAOS pool
//! (`PROXYSTORE_DAOS_POOL`; see the README), once per layout:
//! - `array`: one byte array per object, in `PROXYSTORE_DAOS_CONT`;
//! - `pydaos`: values of a PyDAOS dictionary, in the PYTHON container
//!   `PROXYSTORE_DAOS_PY_CONT` (default: `PROXYSTORE_DAOS_CONT`).
//!
//! Each case gets a fresh namespace (for `pydaos`, a fresh dictionary);
//! `cross_process_resolve`, `shared_namespace` and `outlives_process`
//! rebuild the connector in a child process from its configuration.

mod common;

/// One suite in module `$m` over the connectors `$setup` makes: with the
/// DAOS headers found at build time, one test per case; without them, one
/// ignored test that runs every case (with `--ignored`, against a DAOS
/// whose libdaos is on the loader path).
macro_rules! daos_suite {
    ($m:ident, $setup:expr) => {
        #[cfg(has_daos)]
        mod $m {
            fn setup() -> daos_connector::DaosConnector {
                $setup
            }
            proxy_core::conformance_suite!(setup = setup, register = daos_connector::register);
        }

        #[cfg(not(has_daos))]
        mod $m {
            use proxy_core::IntoDynConnector;
            use proxy_core::conformance::{CASES, Ctx, child_entry, run_case};

            fn setup() -> daos_connector::DaosConnector {
                $setup
            }

            #[test]
            #[ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR), and a running DAOS pool + containers (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT, PROXYSTORE_DAOS_PY_CONT)"]
            fn conformance_all_cases() {
                daos_connector::register();
                let mut failed = Vec::new();
                for case in CASES.iter().filter(|c| !c.opt_in) {
                    let entry = concat!(stringify!($m), "::conformance_child_entry");
                    let ctx = Ctx::new(setup().into_dyn(), entry);
                    if let Err(m) = run_case(case, ctx) {
                        failed.push(m);
                    }
                }
                assert!(failed.is_empty(), "{failed:#?}");
            }

            #[test]
            #[ignore = "entry point of the conformance suite's child processes"]
            fn conformance_child_entry() {
                child_entry(daos_connector::register);
            }
        }
    };
}

daos_suite!(array, crate::common::connector("conf"));
daos_suite!(
    pydaos,
    daos_connector::DaosConnector::new(crate::common::pydaos_options("pyconf"))
        .expect("connect to the test DAOS pool and PYTHON container")
);
